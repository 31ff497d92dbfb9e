from graphgen_cli.main import cli

cli()
