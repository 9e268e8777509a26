"""What the client's verbs return, its errors and family sets (strata_client.Client).

Leases and Reservations hold the views a Client handed out and hand themselves back to it
(release, commit, abort); everything else here is a plain value.
Thread safety: values; a Leases or Reservations object belongs to one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import (TYPE_CHECKING, Dict, FrozenSet, Iterable, Iterator, List, Optional, Tuple,
                    Union)

import numpy as np

from . import wire
from .keys import BlockKey, KeyLike, as_key
from .wire import Family, Tier, WireStatus

if TYPE_CHECKING:
    from .client import Client

FamiliesLike = Union[int, Family, str, Iterable[Union[Family, str]]]

# What a block needs to count as a hit when the caller does not say: the compressed families
# every V4 layout stores per block (the engine's HitFamilies).
DEFAULT_HIT_FAMILIES = (Family.CSA, Family.CSA_INDEX, Family.HCA)


# ---- errors ----


class StrataError(Exception):
    """A request the server (or the client) refused. `status` is a WireStatus; `status_name`
    its wire name ("auth", "no_space", ...)."""

    def __init__(self, status, message: str = "", verb: Optional[str] = None):
        self.status = status
        self.status_name = (status.wire_name if isinstance(status, WireStatus) else
                            str(status) if status is not None else self._default_name)
        self.message = message
        self.verb = verb
        where = f"{verb}: " if verb else ""
        super().__init__(f"{where}{self.status_name}" + (f": {message}" if message else ""))

    _default_name = "error"


class StrataConnectionError(StrataError):
    """The server is unreachable or the connection broke; the next call reconnects."""

    _default_name = "disconnected"

    def __init__(self, message: str = "", verb: Optional[str] = None):
        super().__init__(None, message, verb)


class StrataTimeoutError(StrataConnectionError):
    """A call ran past its deadline; the connection was dropped (a late answer would
    desynchronise it) and the next call reconnects."""

    _default_name = "timeout"


# ---- families ----


def family_mask(families: FamiliesLike) -> int:
    """A family bit mask from a mask, a Family, a name ("csa") or an iterable of those."""
    if isinstance(families, Family):
        return 1 << int(families)
    if isinstance(families, (int, np.integer)) and not isinstance(families, bool):
        mask = int(families)
        if not 0 <= mask < (1 << wire.NUM_FAMILIES):
            raise ValueError(f"family mask {mask:#x} out of range")
        return mask
    if isinstance(families, str):
        return 1 << int(Family[families.upper()])
    mask = 0
    for f in families:
        mask |= family_mask(f)
    return mask


def families_in(mask: int) -> List[Family]:
    return [f for f in Family if mask & (1 << int(f))]


# ---- results ----


@dataclass
class BlockInfo:
    """What LOOKUP found for one block: its families and the fastest tier holding each."""

    families: FrozenSet[Family]
    tiers: Dict[Family, Tier]


@dataclass
class LookupResult:
    hit_blocks: int  # leading keys whose blocks hold every required family
    best_checkpoint: int  # b: blocks 0..b-1 restore through the checkpoint at b-1; 0: none
    hit_bytes: Dict[Tier, int]  # bytes of every family stored for the hit blocks, by tier
    blocks: List[BlockInfo]  # the hit blocks, then the first block that missed (if any)
    connection_lost: bool = False  # the server was unreachable: reported as a miss

    @property
    def total_hit_bytes(self) -> int:
        return sum(self.hit_bytes.values())


@dataclass
class LeaseItem:
    key: BlockKey
    family: Family
    status: Union[WireStatus, int]
    tier: Tier
    offset: int
    size: int
    lease: int  # 0 unless status is OK
    view: Optional[np.ndarray]  # read-only uint8 view into the arena; None for a miss

    @property
    def found(self) -> bool:
        return self.status == WireStatus.OK


class Leases:
    """What GET returned: one item per (key, family), key-major, families in Family order.

    Found items hold a lease: their views stay valid and unchanged until released (`release()`,
    `Client.release`, leaving a `with` block, or the connection ending). Do not use a view after
    its lease is released: the arena space may hold another object by then."""

    def __init__(self, client: "Client", items: List[LeaseItem], per_key: int, generation: int,
                 connection_lost: bool = False):
        self._client = client
        self.items = items
        self.per_key = per_key  # families requested: items per key
        self.generation = generation  # the connection that holds the leases
        self.connection_lost = connection_lost
        self.released = False
        self._index = {(it.key, it.family): it for it in items}

    def __enter__(self) -> "Leases":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __iter__(self) -> Iterator[LeaseItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def item(self, key: KeyLike, family: FamiliesLike) -> LeaseItem:
        return self._index[(as_key(key), Family(family_mask(family).bit_length() - 1))]

    def view(self, key: KeyLike, family: FamiliesLike) -> Optional[np.ndarray]:
        """The object's bytes (a read-only uint8 view of the arena), or None for a miss."""
        return self.item(key, family).view

    def __getitem__(self, key_family: Tuple[KeyLike, FamiliesLike]) -> Optional[np.ndarray]:
        return self.view(*key_family)

    @property
    def lease_ids(self) -> List[int]:
        return [it.lease for it in self.items if it.lease]

    @property
    def all_found(self) -> bool:
        return bool(self.items) and all(it.found for it in self.items)

    @property
    def hit_blocks(self) -> int:
        """Leading keys whose every requested family was found."""
        n = 0
        for i in range(0, len(self.items), self.per_key or 1):
            if not all(it.found for it in self.items[i:i + self.per_key]):
                break
            n += 1
        return n

    def release(self) -> None:
        if not self.released:
            self._client.release(self)


@dataclass
class ReserveSpec:
    """One object to reserve: its key, family and size, plus the store's PutHints."""

    key: KeyLike
    family: FamiliesLike
    size: int
    ns: int = 0
    depth: int = 0
    parent: Optional[KeyLike] = None
    value_per_byte: float = 0.0


@dataclass
class ReservedItem:
    key: BlockKey
    family: Family
    ns: int
    size: int
    status: Union[WireStatus, int]
    offset: int
    id: int  # the reservation; 0 unless status is OK
    view: Optional[np.ndarray]  # writable uint8 view of the reserved space
    done: bool = False  # committed or aborted

    @property
    def ok(self) -> bool:
        return self.status == WireStatus.OK


class Reservations:
    """Space RESERVE gave out: write each item's bytes into its `view`, then commit or abort.

    As a context manager it commits the outstanding items when the block ends normally and
    aborts them when it raises."""

    def __init__(self, client: "Client", items: List[ReservedItem], generation: int):
        self._client = client
        self.items = items
        self.generation = generation

    def __iter__(self) -> Iterator[ReservedItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> ReservedItem:
        return self.items[i]

    @property
    def ids(self) -> List[int]:
        return [it.id for it in self.items if it.id and not it.done]

    @property
    def views(self) -> List[Optional[np.ndarray]]:
        return [it.view for it in self.items]

    def commit(self) -> List[Union[WireStatus, int]]:
        return self._client.commit(self)

    def abort(self) -> List[Union[WireStatus, int]]:
        return self._client.abort(self)

    def __enter__(self) -> "Reservations":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if not self.ids:
            return
        if exc_type is None:
            statuses = self.commit()
            bad = [s for s in statuses if s != WireStatus.OK]
            if bad:
                raise StrataError(bad[0], f"{len(bad)} of {len(statuses)} commits failed",
                                  "COMMIT")
        else:
            try:
                self.abort()
            except StrataError:
                pass  # the connection is gone: the server dropped the reservations with it
