"""One module per `birdanim` user command (see birdanim/cli.py for the contract)."""
