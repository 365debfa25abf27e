"""The vulnerability gate: findings from scanners and reports, judged against a policy.

Every source (report files, a trivy cip runs, signed attestations) becomes `Finding`s bound to
the image digest they are about; `policy.py` decides which of them hold an image back, and
`gate.py` assesses each source digest once, an index through its platforms. `cip check` (the
`vulnerabilities` check) and `cip run` (the `vulnerable` verdict) both ask the gate.
"""
