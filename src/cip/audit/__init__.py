"""The auditor: judges every change to the production registries against the manifests.

Events come from Pub/Sub pushes (GCR, Artifact Registry) and Distribution notifications
(`events.py`); what the manifests promote is indexed once (`promises.py`); each event gets one
verdict, as data (`verdicts.py`, `judge.py`), with index parents found without walking a
registry (`parents.py`); `reconcile.py` judges what a registry holds when events were lost;
`service.py` is the HTTP service and `metrics.py` its Prometheus counters.
"""
