"""Device cards: every bundled card builds; bad cards are rejected naming the field."""
import pytest

from memsim.devices.cards import CardError, available_cards, card_from_dict, load_card


def test_every_bundled_card_loads_and_cites_a_source():
    cards = available_cards()
    assert cards["diode"] and cards["amplifier"] and cards["memristor"]
    for kind, names in cards.items():
        for name in names:
            card = load_card(kind, name)
            assert card.source.strip(), f"{kind} card {name} cites no source"


def test_unknown_card_lists_the_bundled_ones():
    with pytest.raises(CardError, match="unknown diode card 'nope'.*1n4148"):
        load_card("diode", "nope")


@pytest.mark.parametrize("kind,data,field", [
    ("diode", {"name": "x", "source": "s", "saturation_current": -1e-9, "emission_coefficient": 1.0}, "saturation_current"),
    ("diode", {"name": "x", "source": "s", "saturation_current": 1e-9}, "emission_coefficient"),
    ("amplifier", {"name": "x", "source": "s", "gain": 0.0, "backward_gain": 1.0}, "gain"),
    ("memristor", {"name": "x", "source": "s", "g_min": 2e-6, "g_max": 1e-6}, "g_min"),
])
def test_bad_cards_name_the_field(kind, data, field):
    with pytest.raises(CardError, match=field):
        card_from_dict(kind, data)


def test_card_file_with_unknown_field(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text('kind = "diode"\nname = "d"\nsource = "s"\nsaturation_current = 1e-9\n'
                 'emission_coefficient = 1.0\nbogus = 3\n')
    with pytest.raises(CardError, match="bogus"):
        load_card("diode", p)
