"""``orders-admin``: the operator's command line for the fleet (inspect, dead letters, maintenance).

Each command is a plain function over the fleet's own building blocks (models, actors, the
outbox publisher); :mod:`ops.cli` parses the arguments and turns expected failures into
one-line errors and exit codes.
"""
