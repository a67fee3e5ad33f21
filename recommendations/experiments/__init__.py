"""Online experiments between model versions, without Django: visit assignment (``assignment``),
team-draft interleaving (``interleaving``), the statistics of a report (``stats``: Wilson and t
intervals, the mixture SPRT with always-valid p-values, sample-ratio mismatch) and a scripted shopper
population that tests them (``simulation``). The Django side (models, admin, API, serving,
attribution) calls these; see docs/experiments.md.

Web workers import ``assignment`` and ``interleaving`` when serving, so those two stay light
(standard library only); ``stats`` and ``simulation`` load scipy/statsmodels/numpy and are imported
for reports and benchmarks only.
"""
