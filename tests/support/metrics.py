"""Reading one sample out of a service's `/metrics` (Prometheus text exposition)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels are exactly `labels`; 0.0 while that series does not exist.

    A labelled counter or histogram has no series until its first observation, so "absent" reads as 0.
    """
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0
