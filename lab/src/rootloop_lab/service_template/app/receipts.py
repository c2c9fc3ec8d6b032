"""Receipt text for a payment."""

from __future__ import annotations


def format_amount(amount_cents: int, currency: str) -> str:
    return f"{amount_cents // 100}.{amount_cents % 100:02d} {currency.upper()}"


def receipt_line(payment: dict) -> str:
    amount = format_amount(int(payment["amount_cents"]), str(payment.get("currency", "usd")))
    return f"payment {payment['id']}: {amount} to merchant {payment['merchant_id']}"
