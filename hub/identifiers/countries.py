"""Country, province and state code tables used by the identifier schemes.

The tables are written out rather than loaded from a package so that validation has no
run-time dependency and the accepted set is visible in review. ISO 3166-1 alpha-2 lists the
officially assigned codes; ``XI`` (Northern Ireland) is not ISO but is the EORI prefix that
the UK and the EU use for Northern Ireland.
"""

from __future__ import annotations

#: ISO 3166-1 alpha-2 officially assigned codes.
ISO_COUNTRIES: frozenset[str] = frozenset(
    {
        "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
        "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ",
        "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK",
        "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM",
        "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR",
        "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
        "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN",
        "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN",
        "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
        "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ",
        "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
        "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
        "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC",
        "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
        "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
        "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
        "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW"
    }
)

#: Northern Ireland's prefix for EORI numbers and EU authorisations (Windsor Framework).
NORTHERN_IRELAND = "XI"

#: EU member states by ISO code (Greece is ``GR`` here; ``EL`` is only its VAT prefix).
EU_MEMBER_STATES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
        "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"
    }
)

#: Country prefixes that may head an EU AEO authorisation number.
EU_AEO_COUNTRIES: frozenset[str] = EU_MEMBER_STATES | {NORTHERN_IRELAND}

#: Country prefixes that may head an EORI or third-country unique identification number.
EORI_COUNTRIES: frozenset[str] = ISO_COUNTRIES | {NORTHERN_IRELAND}

#: Canadian provinces and territories: postal abbreviation -> (MID code, English name).
#: The MID codes come from 19 CFR part 102, appendix (Canada uses province codes).
CANADIAN_PROVINCES: dict[str, tuple[str, str]] = {
    "AB": ("XA", "Alberta"),
    "NB": ("XB", "New Brunswick"),
    "BC": ("XC", "British Columbia"),
    "MB": ("XM", "Manitoba"),
    "NS": ("XN", "Nova Scotia"),
    "ON": ("XO", "Ontario"),
    "PE": ("XP", "Prince Edward Island"),
    "QC": ("XQ", "Quebec"),
    "SK": ("XS", "Saskatchewan"),
    "NT": ("XT", "Northwest Territories"),
    "NU": ("XV", "Nunavut"),
    "NL": ("XW", "Newfoundland and Labrador"),
    "YT": ("XY", "Yukon"),
}

#: MID country codes for Canada (the reverse view of :data:`CANADIAN_PROVINCES`).
CANADIAN_MID_CODES: frozenset[str] = frozenset(code for code, _ in CANADIAN_PROVINCES.values())

#: US states, DC and territories (USPS abbreviations); used to spot ZIP codes on a street line.
US_STATES: frozenset[str] = frozenset(
    {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
        "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ",
        "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT",
        "VA", "WA", "WV", "WI", "WY", "DC", "AS", "GU", "MP", "PR", "VI"
    }
)

#: Kosovo's user-assigned code, as the EU's customs systems and the UN/CEFACT use it.
KOSOVO = "XK"

#: Country codes an operator's address (and a connection's scope) may carry: ISO's, with
#: the user-assigned codes customs administrations use, Northern Ireland's and Kosovo's.
ADDRESS_COUNTRIES: frozenset[str] = ISO_COUNTRIES | {NORTHERN_IRELAND, KOSOVO}
