"""A plain-Python reference model of the ledger rules (no pandas): fast enough for thousands of Hypothesis examples.

It implements the same day order as `crm.loyalty.ledger` (expiry, redemptions, refunds then
clawbacks of returned orders, accruals and bonuses, FIFO by posting day then entry id) and the
same keys; `test_ledger_properties` checks the production pandas engine against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from crm.loyalty import LoyaltyConfig, birthday_in, entry_id

ORDER, RETURN, INTEREST = "order", "order_return", "interest_payment"


def qid(source_kind: str, key) -> str:
    return entry_id("qualifying", source_kind, key)


@dataclass
class Reference:
    """Ledger, allocations, status account and tiers as dicts and lists."""

    config: LoyaltyConfig
    entries: dict[str, dict] = field(default_factory=dict)
    allocations: dict[tuple[str, str], dict] = field(default_factory=dict)
    qualifying: dict[str, dict] = field(default_factory=dict)
    tiers: dict[int, list[tuple[date, str]]] = field(default_factory=dict)
    last_day: date | None = None

    # ------------------------------------------------------------------ state before a day
    def tier_on(self, cid: int, day: date) -> str | None:
        found = None
        for valid_from, tier in self.tiers.get(cid, []):
            if valid_from <= day:
                found = tier
        return found

    def _lots(self, day: date) -> list[dict]:
        used: dict[str, int] = {}
        for a in self.allocations.values():
            if a["as_of"] < day:
                used[a["lot_entry_id"]] = used.get(a["lot_entry_id"], 0) + a["amount_minor"]
        lots = [
            {**e, "rest": e["amount_minor"] - used.get(e["entry_id"], 0)}
            for e in self.entries.values()
            if e["as_of"] < day and e["amount_minor"] > 0
        ]
        return sorted((lot for lot in lots if lot["rest"] > 0), key=lambda lot: (lot["as_of"], lot["entry_id"]))

    # ------------------------------------------------------------------ posting
    def _add(self, new: list[dict], entry: dict) -> dict:
        new.append(entry)
        return entry

    def _entry(self, day, cid, kind, amount, source_kind, key, expires_on):
        return {
            "entry_id": entry_id(kind, source_kind, key),
            "customer_id": cid,
            "as_of": day,
            "kind": kind,
            "amount_minor": int(amount),
            "source_kind": source_kind,
            "source_key": str(key),
            "expires_on": expires_on,
        }

    def _fifo(self, lots: list[dict], debit: dict, day: date, allocs: list[dict]) -> None:
        need = -debit["amount_minor"]
        for lot in lots:
            if need == 0:
                break
            if lot["customer_id"] != debit["customer_id"] or lot["rest"] <= 0:
                continue
            take = min(need, lot["rest"])
            lot["rest"] -= take
            need -= take
            allocs.append(
                {
                    "debit_entry_id": debit["entry_id"],
                    "lot_entry_id": lot["entry_id"],
                    "customer_id": debit["customer_id"],
                    "as_of": day,
                    "amount_minor": take,
                }
            )
        assert need == 0, "a debit beyond the lots"

    def run_day(self, day: date, orders: list[dict], payments: list[dict], customers: list[dict], births: dict):
        c = self.config
        known = {k for k, e in self.entries.items() if e["as_of"] < day}
        known_q = {k: q for k, q in self.qualifying.items() if q["as_of"] < day}
        yesterday = day - timedelta(days=1)
        lots = self._lots(day)
        new: list[dict] = []
        allocs: list[dict] = []
        quals: list[dict] = []
        std, promo = day + timedelta(days=c.expiry_days), day + timedelta(days=c.promo_expiry_days)
        rate = {t.name: t for t in c.tiers}

        def tier(cid):
            return self.tier_on(cid, yesterday) or c.tiers[0].name

        # 1. expiry
        for lot in lots:
            if lot["expires_on"] is not None and lot["expires_on"] <= day:
                e = self._add(
                    new, self._entry(day, lot["customer_id"], "expiry", -lot["rest"], "lot", lot["entry_id"], None)
                )
                allocs.append(
                    {
                        "debit_entry_id": e["entry_id"],
                        "lot_entry_id": lot["entry_id"],
                        "customer_id": lot["customer_id"],
                        "as_of": day,
                        "amount_minor": lot["rest"],
                    }
                )
                lot["rest"] = 0

        def balance(cid):
            return sum(lot["rest"] for lot in lots if lot["customer_id"] == cid)

        orders = sorted(orders, key=lambda o: (o["customer_id"], o["order_id"]))
        to_post = [o for o in orders if o["status"] == "completed" and qid(ORDER, o["order_id"]) not in known_q]
        returned = [
            o
            for o in orders
            if o["status"] == "returned"
            and qid(ORDER, o["order_id"]) in known_q
            and qid(RETURN, o["order_id"]) not in known_q
        ]
        # 2. redemptions
        redeemed = {}
        for o in to_post:
            r = 0
            if c.redeem_at_checkout:
                r = min(o["amount_minor"] * c.redemption_limit_bp // 10_000, balance(o["customer_id"]))
            redeemed[o["order_id"]] = r
            if r > 0:
                e = self._add(new, self._entry(day, o["customer_id"], "redemption", -r, "order", o["order_id"], None))
                self._fifo(lots, e, day, allocs)
        # 3. reversals: refunds first, then clawbacks, each by (customer, entry id)
        keys = {str(o["order_id"]) for o in returned}
        of_returned = [
            e
            for k, e in self.entries.items()
            if k in known
            and e["source_kind"] in ("order", "order_promotion")
            and e["source_key"] in keys
            and e["kind"] in ("accrual", "redemption")
            and entry_id("reversal", "entry", k) not in known
        ]
        of_returned.sort(key=lambda e: (e["customer_id"], e["entry_id"]))
        for e in of_returned:
            if e["amount_minor"] < 0:
                refund = self._add(
                    new, self._entry(day, e["customer_id"], "reversal", -e["amount_minor"], "entry", e["entry_id"], std)
                )
                lots.append({**refund, "rest": refund["amount_minor"]})
        lots.sort(key=lambda lot: (lot["as_of"], lot["entry_id"]))
        for e in of_returned:
            if e["amount_minor"] > 0:
                claw = min(e["amount_minor"], balance(e["customer_id"]))
                if claw > 0:
                    debit = self._add(
                        new, self._entry(day, e["customer_id"], "reversal", -claw, "entry", e["entry_id"], None)
                    )
                    self._fifo(lots, debit, day, allocs)
        # 4. accruals and bonuses; the status account
        for o in to_post:
            t = tier(o["customer_id"])
            amount = (o["amount_minor"] - redeemed[o["order_id"]]) * rate[t].purchase_bp // 10_000
            if amount > 0:
                self._add(new, self._entry(day, o["customer_id"], "accrual", amount, "order", o["order_id"], std))
            quals.append(self._q(day, o["customer_id"], ORDER, o["order_id"], o["amount_minor"]))
        for o in returned:
            original = known_q[qid(ORDER, o["order_id"])]["amount_minor"]
            quals.append(self._q(day, o["customer_id"], RETURN, o["order_id"], -original))
        for p in payments:
            if p["payment_type"] != "interest" or qid(INTEREST, p["payment_id"]) in known_q:
                continue
            t = tier(p["customer_id"])
            amount = p["amount_minor"] * rate[t].interest_bp // 10_000
            if amount > 0:
                self._add(
                    new, self._entry(day, p["customer_id"], "accrual", amount, "interest_payment", p["payment_id"], std)
                )
            quals.append(self._q(day, p["customer_id"], INTEREST, p["payment_id"], p["amount_minor"]))
        members = {cid for cid in self.tiers if self.tier_on(cid, yesterday)}
        joiners = []
        for cust in customers:
            cid = cust["customer_id"]
            if cid in members or cid in joiners:
                continue
            joiners.append(cid)
            bonus = c.welcome_bonus_minor.get(cust["signup_channel"], 0)
            if bonus > 0:
                self._add(new, self._entry(day, cid, "accrual", bonus, "signup", cid, std))
        pairs = birthday_in(day, c.leap_birthday_on)
        for cid in sorted(members | set(joiners)):
            born = births.get(cid)
            if born is not None and (born.month, born.day) in pairs and c.birthday_bonus_minor > 0:
                e = self._entry(day, cid, "accrual", c.birthday_bonus_minor, "birthday", f"{cid}:{day.year}", promo)
                if e["entry_id"] not in known:
                    self._add(new, e)

        for e in new:
            self.entries.setdefault(e["entry_id"], e)
        for a in allocs:
            self.allocations.setdefault((a["debit_entry_id"], a["lot_entry_id"]), a)
        for q in quals:
            self.qualifying.setdefault(q["entry_id"], q)

        # tiers
        first = day - timedelta(days=c.window_days - 1)
        sums: dict[int, int] = {}
        for q in self.qualifying.values():
            if first <= q["as_of"] <= day:
                sums[q["customer_id"]] = sums.get(q["customer_id"], 0) + q["amount_minor"]
        if self.last_day is None or day > self.last_day:
            for cid in sorted(members | set(joiners)):
                total = sums.get(cid, 0)
                name = ([t.name for t in c.tiers if t.threshold_minor <= total] or [c.tiers[0].name])[-1]
                if cid in joiners or name != self.tier_on(cid, yesterday):
                    self.tiers.setdefault(cid, []).append((day, name))
            self.last_day = day

    def _q(self, day, cid, source_kind, key, amount):
        return {
            "entry_id": qid(source_kind, str(key)),
            "customer_id": cid,
            "as_of": day,
            "source_kind": source_kind,
            "source_key": str(key),
            "amount_minor": int(amount),
        }

    # ------------------------------------------------------------------ invariants
    def violations(self) -> list[str]:
        """The invariants of the ledger, checked in plain Python."""
        out = []
        used: dict[str, int] = {}
        covered: dict[str, int] = {}
        for a in self.allocations.values():
            used[a["lot_entry_id"]] = used.get(a["lot_entry_id"], 0) + a["amount_minor"]
            covered[a["debit_entry_id"]] = covered.get(a["debit_entry_id"], 0) + a["amount_minor"]
            lot, debit = self.entries.get(a["lot_entry_id"]), self.entries.get(a["debit_entry_id"])
            if (
                lot is None
                or debit is None
                or lot["as_of"] > debit["as_of"]
                or lot["customer_id"] != debit["customer_id"]
            ):
                out.append(f"bad allocation {a}")
            elif (
                debit["kind"] == "redemption" and lot["expires_on"] is not None and lot["expires_on"] <= debit["as_of"]
            ):
                out.append(f"redemption paid with expired cashback {a}")
        by_customer: dict[int, dict[date, int]] = {}
        rest: dict[int, int] = {}
        for e in self.entries.values():
            if e["entry_id"] != entry_id(e["kind"], e["source_kind"], e["source_key"]):
                out.append(f"untraceable {e}")
            if e["kind"] == "expiry" and self.entries.get(e["source_key"], {}).get("amount_minor", 0) <= 0:
                out.append(f"expiry of no credit {e}")
            if e["kind"] == "reversal" and self.entries.get(e["source_key"], {}).get("customer_id") != e["customer_id"]:
                out.append(f"reversal of no entry of the member {e}")
            days = by_customer.setdefault(e["customer_id"], {})
            days[e["as_of"]] = days.get(e["as_of"], 0) + e["amount_minor"]
            if e["amount_minor"] > 0:
                left = e["amount_minor"] - used.get(e["entry_id"], 0)
                if left < 0:
                    out.append(f"lot over-consumed {e}")
                rest[e["customer_id"]] = rest.get(e["customer_id"], 0) + left
            elif covered.get(e["entry_id"], 0) != -e["amount_minor"]:
                out.append(f"debit not covered {e}")
        for cid, days in by_customer.items():
            running = 0
            for d in sorted(days):
                running += days[d]
                if running < 0:
                    out.append(f"negative balance {cid} on {d}")
            if running != rest.get(cid, 0):
                out.append(f"balance {running} != rest of lots {rest.get(cid, 0)} for {cid}")
        return out
