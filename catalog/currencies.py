"""ISO 4217 currency codes a product price may be in, and the check every writer of a price uses.

Python has no list of them, so it is kept here: the current codes of ISO 4217 list one (currencies
and funds, as published by SIX, the maintenance agency), without the ones no price can be in
(XXX "no currency", XTS "for testing") and without withdrawn ones (HRK, ZWL, ANG, VEF, ...).
Update it when the agency publishes an amendment (a new code is a new currency a shop may sell in).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

ISO_4217 = frozenset("""
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF
XPD XPF XPT XSU XUA YER ZAR ZMW ZWG
""".split())


def currency_code(value: str) -> str:
    """The ISO 4217 code ``value`` names (three ASCII letters, any case, surrounding spaces
    ignored), upper-cased; ValueError when it is not one."""
    # ASCII first: "ß".upper() is "SS", and non-ASCII letters pass isalpha().
    code = value.strip().upper() if isinstance(value, str) and value.isascii() else ""
    if code not in ISO_4217:
        raise ValueError(f"{str(value)[:20]!r} is not an ISO 4217 currency code")
    return code


def validate_currency(value: str) -> None:
    """Model field validator: an upper-case ISO 4217 code, as stored."""
    if not (isinstance(value, str) and value in ISO_4217):
        raise ValidationError(
            "%(value)s is not an ISO 4217 currency code (three capital letters, such as EUR or USD).",
            code="invalid_currency", params={"value": repr(str(value)[:20])},
        )
