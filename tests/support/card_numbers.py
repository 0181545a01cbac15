"""Card numbers as clients mistakenly send them, and real payment-provider tokens, for tests."""

from __future__ import annotations

#: Card numbers as people type or paste them (Stripe's and the brands' published test numbers).
CARD_NUMBERS = {
    "unbroken": "4242424242424242",
    "spaces": "4242 4242 4242 4242",
    "dashes": "4242-4242-4242-4242",
    "dots": "4242.4242.4242.4242",
    "slashes": "4242/4242/4242/4242",
    "underscores": "4242_4242_4242_4242",
    "no-break spaces": "4242\u00a04242\u00a04242\u00a04242",
    "thin spaces": "4242\u20094242\u20094242\u20094242",
    "narrow no-break spaces": "4242\u202f4242\u202f4242\u202f4242",
    "ideographic spaces": "4242\u30004242\u30004242\u30004242",
    "zero-width spaces": "4242\u200b4242\u200b4242\u200b4242",
    "en dashes": "4242\u20134242\u20134242\u20134242",
    "mixed": "4242 -4242.\u00a04242\t4242",
    "several spaces": "4242   4242   4242   4242",
    "fullwidth digits": "\uff14\uff12" * 8,
    "fullwidth digits and spaces": " ".join(["\uff14\uff12\uff14\uff12"] * 4),
    "arabic-indic digits": "\u0664\u0662\u0664\u0662" * 4,
    "amex grouping": "3782 822463 10005",
    "mastercard": "5555 5555 5555 4444",
    "19 digits": "6011 0009 9013 9424 000",
    "12 digits": "5018 0000 0009",
    "surrounding spaces": "  4242 4242 4242 4242  ",
    "inside a token": "pm_4000056655665556",
    "after a label": "card: 4000-0566-5566-5556",
    "wrong check digit": "4242 4242 4242 4241",
    "with expiry and cvc": "4242 4242 4242 4242 12/34 123",
}

#: Tokens real providers issue, which must go through.
TOKENS = [
    "pm_card_ok",
    "pm_card_declined",
    "pm_card_no_response",
    "pm_card_visa",
    "pm_card_chargeDeclined",
    "tok_1234",
    "tok_visa",
    "pm_1N3xYzLkdIwHu7ixYSbGzpLq",
    "card_1MvoiELkdIwHu7ixOeFh0Bbp",
    "pm_12345678901",
    "src_2024_11_21",
    "tok_123456789_ab_12",
]
