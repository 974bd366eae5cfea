from preflight.cli import script

script()  # exits with main()'s status (cli.script says why it is os._exit)
