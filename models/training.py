"""Pre-training the frozen core and training task weight sets.

``train_core``
    Trains the whole network on the source task, then writes the frozen-core artifact and the
    source task's weight set.
``train_task``
    Loads the frozen core (and, as a starting point, the source task's trainable cores), starts a
    pixel head at the least-squares fit of the task's targets from those cores' features
    (:func:`fit_pixel_head`), then trains only the configurable parameters on a target task and
    writes its weight set. The
    frozen layers are not trainable, so their weights cannot move; :func:`train_task` checks
    that the frozen codes after training equal the artifact's, bit for bit, before writing.

``mode`` also offers the two baselines the accuracy benchmark compares against: ``"full"``
fine-tunes every weight (frozen core included), ``"head"`` trains the head only.

Training is reproducible: a fixed seed per (spec, task), deterministic TensorFlow ops, and a
single-threaded data order.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras
from tqdm.auto import tqdm

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_bytes
from semifreddo.deploy.contract.weightset import WeightSet, read_weight_set, write_weight_set

from .artifacts import BuildPaths, FrozenCore, load_core, save_core
from .builder import build_model, keras_layer, set_repeat, set_shuffle
from .datasets import SAMPLES, TaskData, load_task, psnr
from .layout import apply_codes, configurable_tensors, extract_codes, frozen_layer_names, frozen_tensors, register_map
from .network import describe
from .spec import Spec, Target

MODES = ("semifreddo", "full", "head")
EAGER_STEPS = 12


@dataclass
class TrainResult:
    task: str
    mode: str
    metrics: dict
    model: keras.Model
    weightset: Path | None = None
    core: FrozenCore | None = None


def seed_everything(spec: Spec, task: str) -> None:
    seed = (spec.data.seed * 1_000_003 + zlib.crc32(task.encode())) % (2**31)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class EpochProgress(keras.callbacks.Callback):
    """A tqdm bar over epochs showing the running loss and metric."""

    def __init__(self, total: int, description: str, enabled: bool = True):
        super().__init__()
        self.bar = tqdm(total=total, desc=description, unit="epoch", disable=not enabled, file=sys.stderr,
                        dynamic_ncols=True, mininterval=0.5)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy")}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


def _sliced_loss(kind: str, classes: int):
    if kind == "classify":
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return lambda y, logits: ce(y, logits[:, :classes])
    return keras.losses.MeanSquaredError()


def _accuracy_metric(classes: int):
    def accuracy(y, logits):
        predicted = tf.argmax(logits[:, :classes], axis=-1)
        return tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.reshape(y, [-1]), tf.int64), predicted), tf.float32))
    return accuracy


def evaluate(model: keras.Model, data: TaskData, batch_size: int = 256) -> dict:
    """Quality on the test split, computed with the quantized model (what the hardware computes)."""
    outputs = predict(model, data.x_test, batch_size)
    if data.kind == "classify":
        predicted = np.argmax(outputs[:, :data.classes], axis=-1)
        return {"accuracy": float(np.mean(predicted == data.y_test)), "n_test": int(len(data.y_test))}
    return {"psnr_db": psnr(outputs, data.y_test), "n_test": int(len(data.x_test))}


PREDICT_PIXELS = 1 << 20        # pixels per forward batch: whole frames go a few at a time


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Forward pass in eager batches (no graph tracing, which costs more than it saves here)."""
    pixels = int(np.prod(np.shape(x)[1:3])) if np.ndim(x) >= 3 else 1
    batch_size = max(1, min(batch_size, PREDICT_PIXELS // max(1, pixels)))
    return np.concatenate([model(x[i:i + batch_size], training=False).numpy()
                           for i in range(0, len(x), batch_size)]) if len(x) else np.zeros((0,))


def quality(metrics: dict) -> tuple[str, float]:
    """The headline number of a metrics dict: ('accuracy', 0.97) or ('psnr_db', 27.1)."""
    key = "accuracy" if "accuracy" in metrics else "psnr_db"
    return key, metrics[key]


def fit(model: keras.Model, data: TaskData, epochs: int, batch_size: int, learning_rate: float,
        description: str, progress: bool = True) -> None:
    """Train ``model`` on ``data``; a model with several inputs and outputs (multi-task pre-training)
    takes lists of equally long arrays as ``x_train`` and ``y_train``, one per output, each with the
    task kind's loss."""
    samples = len(data.x_train[0]) if isinstance(data.x_train, list) else len(data.x_train)
    steps = max(1, int(np.ceil(samples / batch_size))) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    metrics = [_accuracy_metric(data.classes)] if data.kind == "classify" else []
    # Tracing the training graph costs about as much as a dozen eager steps, so a short run (a smoke
    # test, a quick sweep point) is faster eagerly. Either way the run is deterministic.
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=_sliced_loss(data.kind, data.classes),
                  metrics=metrics, run_eagerly=steps <= EAGER_STEPS)
    callbacks = [EpochProgress(epochs, description, progress)]
    if isinstance(data.x_train, (np.ndarray, list)):
        model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                  callbacks=callbacks)
    else:       # user data held as input codes: batches are converted as they are needed
        batches = CodeBatches(data.x_train, data.y_train, batch_size, seed=int(np.random.randint(2**31 - 1)))
        model.fit(batches, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)


class CodeBatches(keras.utils.Sequence):
    """Training batches drawn from images held once as input codes (``userdata.GridImages``), in an
    order reshuffled every epoch by a seeded generator; only one batch is ever float32."""

    def __init__(self, x, y: np.ndarray, batch_size: int, seed: int):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, i: int):
        rows = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("SEMIFREDDO_PROGRESS", "1") != "0"


def train_core(spec: Spec, build: str | Path | None = None, *, epochs: int | None = None,
               subset: int | None = None, progress: bool | None = None) -> TrainResult:
    """Pre-train on the source task (and on ``source.also``, see :func:`pretraining_model`); write
    the frozen core and the source task's weight set."""
    paths = BuildPaths.for_spec(spec, build)
    seed_everything(spec, spec.data.source)
    data = load_task(spec, spec.data.source).subset(subset, spec.data.seed)
    model = build_model(spec)
    cfg = spec.data.train_core
    tasks = spec.data.pretrain_tasks
    if len(tasks) == 1:
        fit(model, data, epochs or cfg.epochs, cfg.batch_size, cfg.learning_rate,
            f"{spec.name}: pre-train core on {spec.data.source}", _progress_enabled(progress))
    else:
        every = [data] + [load_task(spec, task).subset(subset, spec.data.seed) for task in tasks[1:]]
        joint = TaskData("+".join(tasks), data.kind, data.classes, [d.x_train for d in every],
                         [d.y_train for d in every], data.x_test, data.y_test)
        fit(pretraining_model(spec, model), joint, epochs or cfg.epochs, cfg.batch_size, cfg.learning_rate,
            f"{spec.name}: pre-train core on {', '.join(tasks)}", _progress_enabled(progress))
    metrics = evaluate(model, data)
    metrics["epochs"] = int(epochs or cfg.epochs)
    if len(tasks) > 1:
        metrics["pretrain_tasks"] = list(tasks)
    core = save_core(paths.core, spec, extract_codes(model, frozen_tensors(spec)), metrics)
    weightset = _write_weightset(spec, paths, model, core, spec.data.source, data, metrics, role="source")
    return TrainResult(spec.data.source, "semifreddo", metrics, model, weightset, core)


def pretraining_model(spec: Spec, model: keras.Model) -> keras.Model:
    """Multi-task pre-training: ``model`` (the source task's network) and, for every task of
    ``source.also``, the same frozen and trainable cores under a head of its own (a copy of the
    head's layers, with fresh weights). One input and one output per task, source task first;
    training it trains ``model``'s layers in place. The extra heads exist only here: a weight set
    holds the source head, and every target task trains a head of its own."""
    network = describe(spec)
    head = [layer for layer in network.layers if layer.core == "head" and layer.kind in ("conv", "dense", "output",
                                                                                          "pool", "relu")]
    features = model.get_layer(head[0].inputs[0]).output
    cores = keras.Model(model.input, features, name="cores")
    inputs, outputs = [model.input], [model.output]
    for task in spec.data.also:
        x = keras.Input(shape=model.input.shape[1:], name=f"{task}_image")
        inputs.append(x)
        y = cores(x)
        for layer in head:
            y = keras_layer(spec, dataclasses.replace(layer, name=f"{task}_{layer.name}"))(y)
        outputs.append(y)
    return keras.Model(inputs, outputs, name=f"pretrain_{model.name}")


def prepare_task_model(spec: Spec, core: FrozenCore, source_weights: WeightSet | None, mode: str,
                       shuffle=()) -> keras.Model:
    """A model with the frozen core loaded and the right layers trainable for ``mode``."""
    model = build_model(spec)
    apply_codes(model, frozen_tensors(spec), core.codes)
    if source_weights is not None:
        # Start the trainable cores (not the head: it is task specific) from the source task.
        codes = source_weights.codes()
        network = describe(spec)
        core_tensors = [t for t in network.configurable if t.weight != "swap" and network.layer(t.layer).core != "head"]
        apply_codes(model, core_tensors, codes)
    set_shuffle(model, spec, shuffle)
    frozen = frozen_layer_names(spec)
    for layer in model.layers:
        if mode == "semifreddo":
            layer.trainable = layer.name not in frozen
        elif mode == "head":
            layer.trainable = describe(spec).layer(layer.name).core == "head"
        elif mode == "full":
            layer.trainable = True
        else:
            raise ValueError(mode)
    return model


def train_task(spec: Spec, task: str, build: str | Path | None = None, *, mode: str = "semifreddo",
               epochs: int | None = None, subset: int | None = None, progress: bool | None = None,
               write: bool = True, data: TaskData | None = None, repeat: int | None = None) -> TrainResult:
    """Train a target task's configurable parameters on the frozen core and write its weight set.

    ``repeat``: how many times the repeated blocks run while training and evaluating (default: the
    spec's ``repeat.default``); the weights are shared across runs, as the hardware shares them.

    ``data``: the task's own data (:mod:`semifreddo.models.userdata`); then ``task`` may be a task
    the spec does not name, the weight set's role is ``user`` and it records where the data came
    from, and the held-out samples are written to ``BUILD/<spec>/samples/<task>.npz``."""
    if mode not in MODES:
        raise SemifreddoError(f"unknown training mode {mode!r} (choose from {', '.join(MODES)})")
    target = spec.target(task) if data is None or task in spec.task_names else Target(task)
    paths = BuildPaths.for_spec(spec, build)
    core = load_core(paths.core, spec)
    source_path = paths.weightset(spec.data.source)
    source_weights = read_weight_set(source_path, expect_core_id=core.core_id) if source_path.exists() else None

    user = data is not None
    seed_everything(spec, task)
    data = (data if user else load_task(spec, task)).subset(subset, spec.data.seed)
    model = prepare_task_model(spec, core, source_weights, mode, target.shuffle)
    repeat = spec.repeat_default if repeat is None else repeat
    set_repeat(model, spec, repeat)
    cfg = spec.data.train_task
    if data.kind == "pixel":
        fit_pixel_head(model, spec, data)
    fit(model, data, epochs or cfg.epochs, cfg.batch_size, cfg.learning_rate,
        f"{spec.name}: train {task} ({mode})", _progress_enabled(progress))
    metrics = evaluate(model, data)
    metrics["epochs"] = int(epochs or cfg.epochs)
    metrics["repeat"] = int(repeat)

    result = TrainResult(task, mode, metrics, model, core=core)
    if mode == "semifreddo":
        after = extract_codes(model, frozen_tensors(spec))
        for name, codes in core.codes.items():
            if not np.array_equal(after[name], codes):
                raise SemifreddoError(f"task training changed frozen tensor {name}; refusing to write a weight set "
                                      "(a bug in semifreddo: please report it with the spec)")
        if write:
            result.weightset = _write_weightset(spec, paths, model, core, task, data, metrics,
                                                role="user" if user else "target", shuffle=target.shuffle)
            if user:
                atomic_write_bytes(paths.sample(task), data.held_out_samples(SAMPLES, spec.input_bits))
            elif paths.sample(task).exists():          # samples of an earlier training from user data
                paths.sample(task).unlink()
    return result


HEAD_FIT_PIXELS = 1 << 18      # training pixels the least-squares head start is fitted on


def fit_pixel_head(model: keras.Model, spec: Spec, data: TaskData) -> None:
    """Start a pixel head (a 1x1 convolution over every core's features) at the least-squares fit of
    the task's targets from the features the loaded cores compute on the training patches, its
    weights clipped to their format's range. Every mode starts its head this way, so the comparison
    between them stays fair; training then moves the head (and, by mode, the cores) from there."""
    head = next(layer for layer in describe(spec).layers if layer.core == "head" and layer.kind == "conv")
    features = keras.Model(model.input, model.get_layer(head.inputs[0]).output)
    x = data.x_train[0] if isinstance(data.x_train, list) else data.x_train     # an array or GridImages
    y = data.y_train
    take = max(1, min(len(x), HEAD_FIT_PIXELS // max(1, int(np.prod(x.shape[1:3])))))
    rows = np.sort(np.random.default_rng(spec.data.seed).permutation(len(x))[:take])
    f = predict(features, np.asarray(x[rows])).reshape(-1, head.c_in).astype(np.float64)
    t = np.asarray(y[rows]).reshape(-1, head.c_out).astype(np.float64)
    design = np.concatenate([f, np.ones((len(f), 1))], axis=1)
    gram = design.T @ design + 1e-3 * np.eye(design.shape[1])
    solution = np.linalg.solve(gram, design.T @ t)
    w_fmt, b_fmt = head.weight_fmt, head.bias_fmt
    kernel = np.clip(solution[:-1], w_fmt.code_min * w_fmt.lsb, w_fmt.code_max * w_fmt.lsb)
    bias = np.clip(solution[-1], b_fmt.code_min * b_fmt.lsb, b_fmt.code_max * b_fmt.lsb)
    layer = model.get_layer(head.name)
    layer.set_weights([kernel.reshape(layer.get_weights()[0].shape).astype(np.float32),
                       bias.reshape(layer.get_weights()[1].shape).astype(np.float32)])


def _write_weightset(spec: Spec, paths: BuildPaths, model: keras.Model, core: FrozenCore, task: str,
                     data: TaskData, metrics: dict, role: str, shuffle=()) -> Path:
    tensors = configurable_tensors(spec)
    codes = extract_codes(model, tensors)
    extra = {"kind": data.kind, "classes": data.classes, "role": role, "shuffle": list(shuffle),
             "frozen_fraction": round(spec.frozen_fraction, 4)}
    if data.source is not None:
        extra["data"] = data.source
    return write_weight_set(paths.weightset(task), register_map(spec), codes, core_id=core.core_id, task=task,
                            spec=spec.name, metrics=metrics, extra=extra)


def load_reference_model(spec: Spec, build: str | Path | None, weightset: WeightSet | None = None,
                         repeat: int | None = None, shared_repeats: bool = True) -> keras.Model:
    """The QKeras model exactly as the hardware computes it: frozen core and a weight set loaded."""
    paths = BuildPaths.for_spec(spec, build)
    core = load_core(paths.core, spec)
    model = build_model(spec, shared_repeats=shared_repeats, repeat=repeat)
    apply_codes(model, frozen_tensors(spec), core.codes)
    if weightset is not None:
        apply_codes(model, configurable_tensors(spec), weightset.codes())
    return model
