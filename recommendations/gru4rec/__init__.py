"""GRU4Rec session-based recommender: a plain PyTorch engine with no Django import.

Data in (session/item/time events), tensors and files out; the Django side wraps it in
``recommendations.services``.
"""
