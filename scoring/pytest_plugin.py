"""pytest plugin: collects rule regression scenarios (``tests/scenarios/*.yaml``)."""
