"""Testing a scheme: YAML regression scenarios (:mod:`.scenarios`), the pytest
plugin that collects them (:mod:`.pytest_plugin`, entry point ``pytest11``) and
the headless-browser helper of the site tests (:mod:`.browser`)."""
