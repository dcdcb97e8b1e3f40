"""The frames walkthrough as a script: `python examples/frames_walkthrough.py [--out DIR]`."""

from framestream.demo import main

if __name__ == "__main__":
    main()
