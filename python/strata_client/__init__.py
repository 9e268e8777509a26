"""strata_client: a pure-Python client of strata-server (include/strata/wire.h).

    from strata_client import Client, Family
    with Client.connect("/run/strata/strata.sock", tenant="t", secret="s",
                        fingerprint=fp, block_tokens=256) as c:
        keys = c.block_keys(prompt_tokens)
        hit = c.lookup(keys, required=[Family.CSA, Family.CSA_INDEX, Family.HCA])
        with c.get(keys[:hit.hit_blocks], Family.CSA) as leases:
            for item in leases:
                consume(item.view)  # a zero-copy numpy view of the shared arena
"""

from .client import Client
from .results import (DEFAULT_HIT_FAMILIES, BlockInfo, LeaseItem, Leases, LookupResult,
                      ReservedItem, Reservations, ReserveSpec, StrataConnectionError, StrataError,
                      StrataTimeoutError, families_in, family_mask)
from .keys import (BlockKey, as_key, chain_block_keys, chain_key, namespace_id_from_name,
                   root_key)
from .wire import Family, SwaPolicy, Tier, Verb, WireStatus

__version__ = "0.1.0"

__all__ = [
    "BlockInfo", "BlockKey", "Client", "DEFAULT_HIT_FAMILIES", "Family", "LeaseItem", "Leases",
    "LookupResult", "ReserveSpec", "ReservedItem", "Reservations", "StrataConnectionError",
    "StrataError", "StrataTimeoutError", "SwaPolicy", "Tier", "Verb", "WireStatus", "as_key",
    "chain_block_keys", "chain_key", "families_in", "family_mask", "namespace_id_from_name",
    "root_key",
]
