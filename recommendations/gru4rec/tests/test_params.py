import pytest

from recommendations.gru4rec.params import GRU4RecParams, parse_params


def test_parse_reference_names_and_lists():
    p = parse_params("loss=bpr-max,layers=200/100,batch_size=32,dropout_p_embed=0.5,dropout_p_hidden=0.1,"
                     "learning_rate=0.05,momentum=0.4,n_sample=2048,sample_alpha=0.4,embedding=0,"
                     "constrained_embedding=True,n_epochs=3,bpreg=1.95,elu_param=0.5,logq=0")
    assert p.layers == [200, 100] and p.loss == "bpr-max" and p.batch_size == 32
    assert p.constrained_embedding is True and p.bpreg == 1.95 and p.n_epochs == 3
    assert parse_params("layers=100").layers == [100]
    assert parse_params("constrained_embedding=false,embedding=64").input_mode == "embedding"
    assert parse_params("constrained_embedding=0").input_mode == "onehot"


def test_round_trip_string():
    p = parse_params("loss=cross-entropy,layers=100/50,logq=1")
    assert parse_params(p.to_string()) == p


def test_unknown_name_is_an_error_naming_it():
    with pytest.raises(ValueError, match="hidden_size"):
        parse_params("loss=cross-entropy,hidden_size=100")
    with pytest.raises(ValueError, match="loss"):
        parse_params("loss=top1")
    with pytest.raises(ValueError, match="batch_size"):
        parse_params("batch_size=abc")
    with pytest.raises(ValueError, match="unknown"):
        GRU4RecParams.from_dict({"nope": 1})


def test_gru_variant_is_parsed_and_checked():
    assert parse_params("gru_variant=reference").gru_variant == "reference"
    assert parse_params("layers=10").gru_variant == GRU4RecParams().gru_variant
    p = parse_params("gru_variant=reference,layers=10/5")
    assert parse_params(p.to_string()) == p
    with pytest.raises(ValueError, match="gru_variant"):
        parse_params("gru_variant=lstm")
