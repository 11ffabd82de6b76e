"""The batch schema: every column of every batch kind, with its layout and who uses it.

Three kinds of batch carry experience (`Columns` names them all):

- FRAGMENT: what an EnvRunner's `sample()` returns, time-major `[T, N]` (multi-agent: one
  `[M, 1]` column per module). Fragments are concatenated (`utils.batch.concat_fragments`,
  `concat_columns`) and split over data-parallel learners (`split_fragment`); recorded
  offline data stores them in the same form (`utils.batch.to_flat`).
- TRANSITIONS: n-step transitions `[B]` (`n_step_transitions`) in replay buffers and the
  batches DQN, SAC and APEX-DQN replay.
- SEQUENCES: R2D2's replay sequences `[B, L]` (`SequenceCutter`, `SequenceReplayBuffer`).

A column's `Layout` fixes its shape convention and so how it concatenates and splits; the
functions in `utils.batch` read it from here, and a column missing from the schema is an
`UnknownColumnError` (it cannot be concatenated wrongly by default). Nested columns (Dict
or Tuple observations and actions, recurrent state dicts) have the layout on every leaf.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from scalerl.core.columns import Columns
from scalerl.utils.errors import did_you_mean


class Layout(enum.Enum):
    """A column's shape convention, and with it how fragments concatenate and split.

    Concatenation "along envs" joins fragments of equal T side by side ([T, N_1 + N_2]);
    "along time" (multi-agent [M, 1] columns) lays them end to end ([M_1 + M_2, 1]).
    """

    #: [T, N, ...] one row per step and env. Along envs: axis 1; along time: axis 0;
    #: split: a slice of the env axis.
    TIME_MAJOR = "time_major"
    #: [N, ...] one row per env, for the step after the fragment's last. Along envs:
    #: axis 0; along time: the last fragment's (every earlier trajectory ended in a
    #: termination or a truncation row, so their rows are never read); split: env slice.
    PER_ENV = "per_env"
    #: [K, 2] int64 rows (t, env) into the [T, N] grid. Along envs: rows appended with the
    #: env offset added; along time: with the time offset added; split: the rows of the
    #: shard's envs, re-indexed to its columns.
    ROW_INDEX = "row_index"
    #: [K, ...] one row per row of a ROW_INDEX column (`Column.index`), in its order:
    #: appended, and split with the rows of their index.
    ROWS = "rows"
    #: [B, ...] one row per replayed sample (a transition, or a whole sequence).
    SAMPLES = "samples"
    #: [B, L, ...] the steps of replayed sequences (obs: L + 1 steps).
    SEQUENCE_STEPS = "sequence_steps"


@dataclass(frozen=True)
class Column:
    """One column: its name, layout, shape, meaning, and who writes and who reads it."""

    name: str
    layout: Layout
    shape: str
    doc: str
    writer: str = ""
    reader: str = ""
    index: str | None = None  # ROWS: the ROW_INDEX column whose rows these are

    def __post_init__(self) -> None:
        if (self.layout is Layout.ROWS) != (self.index is not None):
            raise ValueError(f"Column `{self.name}`: a ROWS column (only) names its index.")


class UnknownColumnError(KeyError):
    """A batch holds a column that its schema does not declare."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class BatchSchema:
    """The columns of one kind of batch, by name (iterates in declaration order)."""

    def __init__(self, kind: str, columns: Iterable[Column]):
        self.kind = kind
        self._columns: dict[str, Column] = {}
        for column in columns:
            self.register(column)

    def register(self, column: Column) -> None:
        """Declare a column (e.g. one a custom EnvRunner or connector adds)."""
        if column.index is not None:
            index = self._columns.get(column.index)
            if index is None or index.layout is not Layout.ROW_INDEX:
                raise ValueError(
                    f"Column `{column.name}`: its index `{column.index}` must be a ROW_INDEX "
                    "column declared before it."
                )
        self._columns[column.name] = column

    def __getitem__(self, name: str) -> Column:
        column = self._columns.get(name)
        if column is None:
            raise UnknownColumnError(
                f"Batch column `{name}` is not in scalerl's {self.kind} schema, so its "
                f"shape and how it concatenates and splits are unknown."
                f"{did_you_mean(name, self._columns)} Declare a new column with "
                f"`scalerl.utils.batch_schema.{self.kind.upper()}.register(Column(name, "
                "layout, shape, doc))`."
            )
        return column

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[Column]:
        return iter(self._columns.values())

    def names(self, layout: Layout | None = None) -> tuple[str, ...]:
        """The column names (of one layout)."""
        return tuple(c.name for c in self if layout is None or c.layout is layout)

    def rows_of(self, index: str) -> tuple[str, ...]:
        """The ROWS columns indexed by the ROW_INDEX column `index`."""
        return tuple(c.name for c in self if c.index == index)

    def check(self, batch: Iterable[str]) -> None:
        """An `UnknownColumnError` for the first column of `batch` not in the schema."""
        for name in batch:
            if name not in self._columns:
                self[name]

    def markdown(self) -> str:
        """The schema as a Markdown table (docs/design.md shows it)."""
        lines = [
            "| column | layout | shape | meaning | written by | read by |",
            "|---|---|---|---|---|---|",
        ]
        for c in self:
            layout = c.layout.name + (f" of `{c.index}`" if c.index else "")
            lines.append(
                f"| `{c.name}` | {layout} | `{c.shape}` | {c.doc} | {c.writer} | {c.reader} |"
            )
        return "\n".join(lines)


C, L = Columns, Layout
_RUNNER = "EnvRunner"
_RECURRENT = "EnvRunner (stateful module)"
_PPO = "PPO learner"
_REPLAY = "n-step, SequenceCutter"
_ALL = f"{_PPO}, {_REPLAY}"
_SEQ = f"{_PPO}, SequenceCutter"

FRAGMENT = BatchSchema(
    "fragment",
    [
        Column(C.OBS, L.TIME_MAJOR, "[T, N, *obs]", "o_t, the observation acted on", _RUNNER, _ALL),
        Column(C.ACTIONS, L.TIME_MAJOR, "[T, N, *act]", "a_t", _RUNNER, _ALL),
        Column(C.REWARDS, L.TIME_MAJOR, "[T, N] f32", "r_t (after `clip_rewards`)", _RUNNER, _ALL),
        Column(C.TERMINATEDS, L.TIME_MAJOR, "[T, N] bool", "the episode ended", _RUNNER, _ALL),
        Column(
            C.TRUNCATEDS,
            L.TIME_MAJOR,
            "[T, N] bool",
            "the episode was cut (time limit, dropped step; multi-agent: trajectory cut)",
            _RUNNER,
            _ALL,
        ),
        Column(
            C.ACTION_DIST_INPUTS,
            L.TIME_MAJOR,
            "[T, N, D] f32",
            "the behaviour policy's distribution inputs",
            _RUNNER,
            _PPO,
        ),
        Column(
            C.PREV_ACTIONS, L.TIME_MAJOR, "[T, N, *act]", "a_{t-1} (0 at starts)", _RECURRENT, _SEQ
        ),
        Column(
            C.PREV_REWARDS, L.TIME_MAJOR, "[T, N] f32", "r_{t-1} (0 at starts)", _RECURRENT, _SEQ
        ),
        Column(
            C.BOOTSTRAP_OBS,
            L.PER_ENV,
            "[N, *obs]",
            "the observation after the last step",
            _RUNNER,
            _ALL,
        ),
        Column(
            C.BOOTSTRAP_STATE,
            L.PER_ENV,
            "[N, *state]",
            "the module's state for `bootstrap_obs`",
            _RECURRENT,
            _PPO,
        ),
        Column(
            C.TRUNC_INDEX,
            L.ROW_INDEX,
            "[K, 2] i64",
            "(t, env) of each truncated episode's last step",
            _RUNNER,
            _ALL,
        ),
        Column(
            C.TRUNC_OBS,
            L.ROWS,
            "[K, *obs]",
            "the true final observation there (obs[t + 1] is a reset one)",
            _RUNNER,
            _ALL,
            index=C.TRUNC_INDEX,
        ),
        Column(
            C.TRUNC_STATE,
            L.ROWS,
            "[K, *state]",
            "the module's state after that step",
            _RECURRENT,
            _PPO,
            index=C.TRUNC_INDEX,
        ),
        Column(
            C.SEQ_INDEX,
            L.ROW_INDEX,
            "[S, 2] i64",
            "(t, env) where each recurrent sequence starts",
            _RECURRENT,
            _SEQ,
        ),
        Column(
            C.STATE_IN,
            L.ROWS,
            "[S, *state]",
            "the module's state at each sequence start",
            _RECURRENT,
            _SEQ,
            index=C.SEQ_INDEX,
        ),
        # Computed by the learner on the (concatenated) fragment.
        Column(C.ACTION_LOGP, L.TIME_MAJOR, "[T, N] f32", "log pi_old(a_t; o_t)", _PPO, _PPO),
        Column(C.VF_PREDS, L.TIME_MAJOR, "[T, N] f32", "V(o_t)", _PPO, _PPO),
        Column(C.ADVANTAGES, L.TIME_MAJOR, "[T, N] f32", "GAE advantages", _PPO, _PPO),
        Column(C.VALUE_TARGETS, L.TIME_MAJOR, "[T, N] f32", "GAE value targets", _PPO, _PPO),
    ],
)

_NSTEP = "n_step_transitions"
_Q = "DQN, SAC, APEX-DQN learners"
_PRIO = "PrioritizedReplayBuffer.sample"
_SAMPLE = "ReplayBuffer.sample"
TRANSITIONS = BatchSchema(
    "transitions",
    [
        Column(C.OBS, L.SAMPLES, "[B, *obs]", "s_t", _NSTEP, _Q),
        Column(C.ACTIONS, L.SAMPLES, "[B, *act]", "a_t", _NSTEP, _Q),
        Column(C.REWARDS, L.SAMPLES, "[B] f32", "R = sum_{k<n'} gamma^k r_{t+k}", _NSTEP, _Q),
        Column(C.NEXT_OBS, L.SAMPLES, "[B, *obs]", "s_{t+n'} (true final obs)", _NSTEP, _Q),
        Column(C.TERMINATEDS, L.SAMPLES, "[B] f32", "1: an episode end within n'", _NSTEP, _Q),
        Column(C.DISCOUNTS, L.SAMPLES, "[B] f32", "gamma^n'", _NSTEP, _Q),
        Column(C.N_STEPS, L.SAMPLES, "[B] i64", "n', the reward steps taken", _NSTEP, "-"),
        Column(C.WEIGHTS, L.SAMPLES, "[B] f32", "importance weights", _PRIO, _Q),
        Column(C.INDICES, L.SAMPLES, "[B] i64", "buffer slots", _SAMPLE, "priorities"),
    ],
)

_CUT = "SequenceCutter"
_R2D2 = "R2D2 learner"
SEQUENCES = BatchSchema(
    "sequences",
    [
        Column(C.OBS, L.SEQUENCE_STEPS, "[B, L + 1, *obs]", "o_0..o_l, 0-padded", _CUT, _R2D2),
        Column(C.ACTIONS, L.SEQUENCE_STEPS, "[B, L, *act]", "a_t, 0-padded", _CUT, _R2D2),
        Column(C.REWARDS, L.SEQUENCE_STEPS, "[B, L] f32", "r_t, 0-padded", _CUT, _R2D2),
        Column(C.TERMINATEDS, L.SEQUENCE_STEPS, "[B, L] bool", "a terminating step", _CUT, _R2D2),
        Column(C.SEQ_MASK, L.SEQUENCE_STEPS, "[B, L] bool", "the valid steps", _CUT, _R2D2),
        Column(C.BURN_IN, L.SAMPLES, "[B] i64", "steps that only unroll the network", _CUT, _R2D2),
        Column(C.STATE_IN, L.SAMPLES, "[B, *state]", "the state before o_0", _CUT, _R2D2),
        Column(C.SEQ_PREV_ACTION, L.SAMPLES, "[B, *act]", "a_{-1}", _CUT, _R2D2),
        Column(C.SEQ_PREV_REWARD, L.SAMPLES, "[B] f32", "r_{-1}", _CUT, _R2D2),
        Column(C.WEIGHTS, L.SAMPLES, "[B] f32", "importance weights", _PRIO, _R2D2),
        Column(C.INDICES, L.SAMPLES, "[B] i64", "buffer slots", _SAMPLE, "priorities"),
    ],
)

SCHEMAS = {s.kind: s for s in (FRAGMENT, TRANSITIONS, SEQUENCES)}


if __name__ == "__main__":  # the tables of docs/design.md
    for schema in SCHEMAS.values():
        print(f"{schema.kind.upper()}\n\n{schema.markdown()}\n")
