"""The webhook's pure admission core: an AdmissionReview in, a decision, a response and a stamp out.

Bottom to top (import-linter keeps it so): ``request`` (parse the review), ``limits`` (the API server's
limits on text) and ``objects`` (reading objects that may be garbage); ``fieldwalk`` (the diff's walk);
``profiles`` (whose objects, which managers) and ``fielddiff`` (what changed, in fieldsV1 paths of
driftwarden.fieldsv1); ``settings`` and ``messages`` (findings and the text for people); ``changes``
(an UPDATE against what Git owns) and ``stamps`` (whether a drift stamp is the webhook's own);
``decision`` (the rules); ``response`` (the AdmissionReview answer) and ``patches`` (the drift stamp).
Nothing here does I/O, logs, awaits or reads the clock.
"""
