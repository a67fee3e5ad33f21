"""The storefront widgets use the recommender: card attributes for tracking, "Why these?"."""
import re

from recommendations import serving


def test_product_page_widgets_carry_source_position_and_model_version(client, gru_version, activate):
    activate(gru_version)
    bundle = serving.model_reload()
    pk = int(bundle.index_pk[0])
    html = client.get(f"/products/{pk}/").content.decode()
    rec = html[html.index('id="recommended-for-you"'):html.index('id="similar-items"')]
    sim = html[html.index('id="similar-items"'):]
    assert len(re.findall(r'data-source="recommended" data-position="\d+" data-model-version="v-gru"', rec)) == 8
    assert len(re.findall(r'data-source="similar" data-position="\d+" data-model-version="v-gru"', sim)) == 8
    assert 'data-position="0"' in rec and f'data-product="{pk}"' not in rec
    assert "Why these?" in rec
    assert "shop/recommendations.js" in html


def test_pages_without_a_model_still_show_popular(client, catalogue):
    html = client.get(f"/products/{catalogue[0].pk}/").content.decode()
    rec = html[html.index('id="recommended-for-you"'):html.index('id="similar-items"')]
    assert len(re.findall(r'data-source="recommended"', rec)) == 8
    assert "No active model" in rec
    index = client.get("/").content.decode()
    assert 'id="recommended-for-you"' in index and "shop/recommendations.js" in index
