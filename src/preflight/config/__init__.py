"""Stage 1, what the user declares: cluster.yaml (inventory, its blocks, node ranges),
environment.yml, waivers, locks, ssh_config. Every file is bounded before it is parsed."""
