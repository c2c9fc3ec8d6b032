from app import receipts


def test_format_amount() -> None:
    assert receipts.format_amount(1234, "usd") == "12.34 USD"


def test_receipt_line() -> None:
    line = receipts.receipt_line(
        {"id": 7, "amount_cents": 500, "currency": "eur", "merchant_id": 2}
    )
    assert line == "payment 7: 5.00 EUR to merchant 2"
