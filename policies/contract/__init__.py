"""Policy contract cases (``cases.yaml``, OPA conformance-test format) and their runner."""
