"""The state of an ``ax.Client`` as a snapshot plus the calls made on it since, replayable.

``Client.save_to_json_file`` costs seconds at a hundred trials (ax-platform 1.3.1 rebuilds a
pandas frame per trial's data: 3.6 s at 100 trials on 2 cores, and ``load_from_json_file``
2.6 s), and Tune writes the searcher's state at every controller step. So
``AxMultiObjectiveSearch`` snapshots the client now and then and saves, beside the snapshot,
the journal: every call it made on the client since, as JSON-able lists. Replaying the journal
on the snapshot gives the client it had.

Journal entries (``index`` is the Ax trial index):

- ``["data", index, values, progression]``: ``attach_data``, an intermediate result;
- ``["complete", index, values, progression]``: ``complete_trial``;
- ``["early_stopped", index, values, progression]``: ``attach_data`` and
  ``mark_trial_early_stopped`` (a trial a scheduler stopped);
- ``["failed", index, reason]`` and ``["abandoned", index]``;
- ``["attach", parameters, outcome, values]``: ``attach_trial`` then the outcome
  (``"complete"``, ``"early_stopped"`` or ``"failed"``): a warm-start point;
- ``["generated", index, parameters]``: a trial Ax generated. Replayed with ``attach_trial``,
  which recreates the same trial index and parameters; what the replay cannot recreate is the
  generator's record of having made it (Ax's ``GeneratorRun`` metadata), which only matters to
  Ax's own analyses of how a trial was made.

Example:
    >>> from ax import Client, RangeParameterConfig
    >>> client = Client()
    >>> client.configure_experiment(
    ...     parameters=[RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0))])
    >>> client.configure_optimization(objective="f")
    >>> snapshot = client_to_json(client)
    >>> journal = [["attach", {"x": 0.5}, "complete", {"f": 1.0}]]
    >>> apply_entry(client, journal[0])
    >>> replayed = client_from_json(snapshot)
    >>> for entry in journal:
    ...     replay_entry(replayed, entry)
    >>> replayed.summarize()["trial_status"].tolist()
    ['COMPLETED']
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence


def apply_entry(client: Any, entry: Sequence[Any]) -> None:
    """Make on ``client`` the call ``entry`` records (all kinds but ``"generated"``)."""
    kind = entry[0]
    if kind == "data":
        _, index, values, progression = entry
        client.attach_data(index, values, progression=progression)
    elif kind == "complete":
        _, index, values, progression = entry
        client.complete_trial(index, raw_data=values, progression=progression)
    elif kind == "early_stopped":
        _, index, values, progression = entry
        client.attach_data(index, values, progression=progression)
        client.mark_trial_early_stopped(index)
    elif kind == "failed":
        _, index, reason = entry
        client.mark_trial_failed(index, failed_reason=reason)
    elif kind == "abandoned":
        client.mark_trial_abandoned(entry[1])
    elif kind == "attach":
        _, parameters, outcome, values = entry
        index = client.attach_trial(parameters)
        if outcome == "failed":
            client.mark_trial_failed(index, failed_reason="reported as failed")
        elif outcome == "early_stopped":
            client.attach_data(index, values)
            client.mark_trial_early_stopped(index)
        else:
            client.complete_trial(index, raw_data=values)
    else:
        raise ValueError(f"journal entry {list(entry)!r}: unknown kind {kind!r}")


def replay_entry(client: Any, entry: Sequence[Any]) -> None:
    """Repeat ``entry`` on a client restored from an earlier snapshot."""
    if entry[0] != "generated":
        apply_entry(client, entry)
        return
    _, index, parameters = entry
    attached = client.attach_trial(parameters)
    if attached != index:
        raise ValueError(
            f"journal replay: Ax gave trial index {attached} to a trial generated as {index}; the "
            "snapshot and the journal do not belong together (a checkpoint written by another "
            "run?). Start the experiment anew or restore an earlier checkpoint."
        )


def client_to_json(client: Any) -> dict:
    """``client`` as the JSON object ``Client.save_to_json_file`` writes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ax_client.json"
        client.save_to_json_file(str(path))
        return json.loads(path.read_text())


def client_from_json(snapshot: Mapping[str, Any]) -> Any:
    """The ``ax.Client`` that ``Client.load_from_json_file`` restores from ``snapshot``."""
    from ax import Client

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ax_client.json"
        path.write_text(json.dumps(snapshot))
        return Client.load_from_json_file(str(path))
