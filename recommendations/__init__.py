"""Recommendations: the GRU4Rec engine (gru4rec/) behind a service layer, model registry, tasks."""
