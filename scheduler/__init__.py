"""The broadcast domain: areas, bulletins, broadcasts, dispatch, endpoint drivers, as-run log."""
