"""Stage 5, cluster-wide work that touches the nodes again, through the launcher: the
collective, the master-port check, the node-to-node logins."""
