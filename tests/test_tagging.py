"""Order tags in terminal comments."""

from __future__ import annotations

from gtw_server.tagging import COMMENT_LIMIT, order_tag, tag_of, terminal_comment


def test_tags_fit_and_survive_broker_edits() -> None:
    tag = order_tag("a" * 64)
    assert len(tag) == 9 and tag_of(tag) == tag
    assert order_tag("x") != order_tag("y")
    long = terminal_comment(tag, "a very long trader comment indeed")
    assert len(long) <= COMMENT_LIMIT and long.startswith(tag + " ")
    # Non-BMP characters count as two UTF-16 units, as the terminal counts them.
    emoji = terminal_comment(tag, "🚀" * 20)
    assert len(emoji.encode("utf-16-le")) // 2 <= COMMENT_LIMIT
    assert tag_of(long + " [sl 1.08420]") == tag
    assert tag_of("so: 45.2%") is None
    assert terminal_comment(tag, None) == tag
