pytest_plugins = ["preflight.pytest_plugin"]
