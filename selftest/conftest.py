pytest_plugins = ["simcluster.pytest_plugin"]
