"""Tracking: visits and the interaction events the recommender learns from."""
