"""The one wording for long lists in messages."""

from socctl.text import some


def test_a_long_list_is_cut_and_says_how_many_are_left_out() -> None:
    hosts = [f"p{i:02d}-rtr1" for i in range(1, 64)]
    assert some(hosts, 3) == "p01-rtr1, p02-rtr1, p03-rtr1 and 60 more"
    assert some(hosts[:3], 3) == "p01-rtr1, p02-rtr1, p03-rtr1"
    assert some([], 3) == ""
