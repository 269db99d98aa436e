"""Redemptions: a subject spends wallet points on a catalog item (part of the pure
core, :mod:`scoring.evaluate.core`).

Stock is first come, first served across subjects; per-subject limits count per
period; a withdrawal gives the stock and the limit back (``_return_redemption``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .outputs import REDEMPTIONS, WITHDRAWN

if TYPE_CHECKING:
    from .core import Scorer

_Base: Any = object


class Redemptions(_Base):
    """The redemption steps of :class:`scoring.evaluate.core.Scorer`."""

    def load_redemptions(self: Scorer, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Earlier granted redemptions, for stock and per-subject limits:
        (item, subject, quantity, at)."""
        for item, s, qty, at in rows:
            self.stock_used[item] += qty
            it = self.scheme.catalog.get(item)
            if it and it.limit:
                self.item_usage[(item, s, self._period(at, it.limit.get("per", "month")))] += qty

    def _return_redemption(self: Scorer, target: str) -> None:
        """Give a withdrawn redemption's stock and per-subject limit back."""
        if target in self.returned:
            return  # given back once already in this run (by a withdrawal, an objection)
        granted = self.granted.pop(target, None)
        if granted is None:
            granted = self.prior.granted_redemption(target)
        if granted is None:
            return
        item_id, sid, qty, at = granted
        self.stock_used[item_id] -= qty
        item = self.scheme.catalog.get(item_id)
        if item and item.limit:
            self.item_usage[(item_id, sid, self._period(at, item.limit.get("per", "month")))] -= qty
        self.flush_redemptions()
        self.returned.add(target)
        self.emit(WITHDRAWN, [(target,)])

    def _redeem(self: Scorer, eid: str, sid: str, at: int, attrs: dict) -> None:
        item_id = str(attrs.get("item", ""))
        qty = int(attrs.get("quantity", 1) or 1)
        subj = self.subjects.get(sid)
        item = self.scheme.catalog.get(item_id)
        grp = attrs.get("group")
        if subj is not None and grp is None:
            allowed = [
                g for g in subj.groups if item is None or item.groups is None or g in item.groups
            ]
            grp = allowed[0] if allowed else (subj.groups[0] if subj.groups else "")
        period = self._posting(at, eid)
        code = None
        cost = item.cost * qty if item else 0
        if subj is None:
            self._unknown_subject(eid, sid)
            return
        if item is None:
            code = "unknown_item"
        elif (
            (item.available_from is not None and at < item.available_from)
            or (item.available_until is not None and at >= item.available_until)
            or (item.groups is not None and grp not in item.groups)
            or grp not in subj.groups
        ):
            code = "not_available"
        else:
            group = self.scheme.groups[grp]
            if item.min_tier is not None:
                _, tier = self._score_at(sid, grp, at)
                if group.tier_rank(tier) > group.tier_rank(item.min_tier):
                    code = "tier_too_low"
            limit_key = None
            if code is None and item.limit:
                limit_key = (item_id, sid, self._period(at, item.limit.get("per", "month")))
                if self.item_usage[limit_key] + qty > item.limit.get("max_count", 1):
                    code = "limit_reached"
            if (
                code is None
                and item.stock is not None
                and self.stock_used[item_id] + qty > item.stock
            ):
                code = "out_of_stock"
            if code is None and self.acct[(sid, grp)][1] < cost:
                code = "insufficient_points"
            if code is None:
                self.acct[(sid, grp)][1] -= cost
                self.stock_used[item_id] += qty
                self.granted[eid] = (item_id, sid, qty, at)
                if limit_key is not None:
                    self.item_usage[limit_key] += qty
                self._post(
                    (
                        sid,
                        grp,
                        "wallet",
                        0,
                        -cost,
                        item_id,
                        None,
                        eid,
                        at,
                        period,
                        "redeem",
                        None,
                        None,
                        None,
                        None,
                        f"redeemed {qty} × {item.title}",
                    )  # fmt: skip
                )
        outcome = "granted" if code is None else "rejected"
        if code is None:
            self.summary.redemptions_granted += 1
        else:
            self.summary.redemptions_rejected += 1
        self.redeemed.append(
            (
                eid,
                sid,
                grp,
                item_id,
                qty,
                cost,
                outcome,
                code,
                at,
                period,
                item.partner if item else None,
            )
        )
        if len(self.redeemed) >= 1000:
            self.flush_redemptions()

    def flush_redemptions(self: Scorer) -> None:
        if self.redeemed:
            self.emit(REDEMPTIONS, self.redeemed[:])
            self.redeemed.clear()
