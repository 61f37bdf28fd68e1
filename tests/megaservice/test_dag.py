from __future__ import annotations

import pytest

from megaservice.dag import DAG, GraphError


def _graph(*edges: tuple[str, str]) -> DAG:
    graph = DAG()
    for name in dict.fromkeys(n for edge in edges for n in edge):
        graph.add_node(name)
    for a, b in edges:
        graph.add_edge(a, b)
    return graph


def test_topological_order_roots_and_leaves() -> None:
    graph = _graph(("asr", "llm"), ("llm", "tts"), ("llm", "log"), ("tts", "animation"))
    assert graph.topological_order() == ["asr", "llm", "tts", "log", "animation"]
    assert graph.roots() == ["asr"]
    assert graph.leaves() == ["log", "animation"]
    assert graph.predecessors("tts") == ["llm"]


def test_an_edge_closing_a_cycle_is_refused_and_named() -> None:
    graph = _graph(("a", "b"), ("b", "c"))
    with pytest.raises(GraphError, match=r"cycle: c -> a -> b -> c"):
        graph.add_edge("c", "a")
    assert graph.edges == [("a", "b"), ("b", "c")]


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [("a", "zzz", "unknown node 'zzz'"), ("a", "a", "self-loop"), ("a", "b", "already exists")],
)
def test_bad_edges_are_refused(source: str, target: str, message: str) -> None:
    graph = _graph(("a", "b"))
    with pytest.raises(GraphError, match=message):
        graph.add_edge(source, target)


def test_duplicate_node_is_refused() -> None:
    graph = _graph(("a", "b"))
    with pytest.raises(GraphError, match="already in the graph"):
        graph.add_node("a")


def test_subgraph_keeps_only_edges_between_kept_nodes() -> None:
    graph = _graph(("a", "b"), ("b", "c"))
    sub = graph.subgraph(["b", "c"])
    assert sub.nodes == ["b", "c"]
    assert sub.edges == [("b", "c")]
