"""Item clusters of the active model ("browse by taste", diversity) and ANN candidate retrieval
for large catalogues. ``clustering``, ``retrieval`` and ``synthetic`` import no Django."""
