"""Entry points that set the process up before the program's modules load.

gip-provider runs every BDII cycle and lives for a fraction of a second. Its
modules make thousands of objects as they load and no garbage worth a
collection, so the cycle collector is off before they are imported, as
provider.main() keeps it off while the program runs: about a millisecond of
every run. Importing this module changes nothing; calling its function does.
"""

import gc


def provider() -> None:
    """The gip-provider command (provider.console_main), without the collector from its first import."""
    gc.disable()
    from gip.cli.provider import console_main

    console_main()
