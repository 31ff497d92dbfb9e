import pytest

from graphgen.llm.jsonrepair import JSONRepairError, parse_json_object


@pytest.mark.parametrize("text", [
    '{"topics": ["A"], "knowledge_points": ["b"]}',
    '  \n{"topics": ["A"], "knowledge_points": ["b"]}\n',
    'Sure!\n```json\n{"topics": ["A"], "knowledge_points": ["b"]}\n```\nDone.',
    '```\n{"topics": ["A"], "knowledge_points": ["b"]}\n```',
    'Here you go: {"topics": ["A"], "knowledge_points": ["b"]} -- hope it helps {not json}',
    '{"topics": ["A",], "knowledge_points": ["b"],}',
    "{'topics': ['A'], 'knowledge_points': ['b']}",
])
def test_parses(text):
    assert parse_json_object(text) == {"topics": ["A"], "knowledge_points": ["b"]}


def test_strings_with_braces_quotes_and_commas_untouched():
    text = '{"q": "a {b} c, }", "s": "it\'s ,]", "n": "say \\"hi\\""}'
    assert parse_json_object(text) == {"q": "a {b} c, }", "s": "it's ,]", "n": 'say "hi"'}


def test_single_quotes_with_inner_double_quote():
    assert parse_json_object("{'a': 'say \"x\"', 'b': True, 'c': None}") == {"a": 'say "x"', "b": True, "c": None}


@pytest.mark.parametrize("text", [
    "", "no json here", '{"topics": ["A"], "knowledge_points": [',
    '```json\n{"topics": ["A"\n```',
])
def test_refuses_to_guess(text):
    with pytest.raises(JSONRepairError):
        parse_json_object(text)


def test_skips_non_json_braces_before_the_object():
    text = 'The answer is $\\frac{1}{2}$ so: {"question": "q", "answer": "1/2"}'
    assert parse_json_object(text) == {"question": "q", "answer": "1/2"}


def test_latex_inside_strings_is_kept():
    text = '{"solution": "We get \\\\frac{1}{2}", "answer": "\\\\frac{1}{2}"}'
    assert parse_json_object(text) == {"solution": "We get \\frac{1}{2}", "answer": "\\frac{1}{2}"}
