"""Where a TensorFlow train step's time goes, by op type, from TensorFlow's profiler.

Builds ARCH on ENCODER (192x256, batch 8, Adam, cross-entropy ignoring 255), runs two
steps under ``tf.profiler`` and sums each op type's time over both compute threads, per
step (so an op type's figure can exceed the step's wall time)::

    python benchmarks/profile_train_step.py encoder_unet mobilenetv3large
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/profile_train_step.py encoder_unet mobilenetv3large

Writes the trace to /tmp/profile_<encoder> (TensorBoard's profile plugin reads it).
"""
import os, sys, glob, collections, time
os.environ["TF_CPP_MIN_LOG_LEVEL"]="2"
import pixelwise  # noqa: E401,F401  (before TensorFlow: oneDNN on unless the variable says 0)
import tensorflow as tf, numpy as np, keras
tf.config.threading.set_intra_op_parallelism_threads(2); tf.config.threading.set_inter_op_parallelism_threads(2)
from pixelwise import models
arch, enc = sys.argv[1], sys.argv[2]
m = models.build(arch, input_size=(192, 256, 3), num_classes=12, encoder=enc)
m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255))
rng=np.random.default_rng(0)
x=rng.random((8,192,256,3),dtype=np.float32); y=rng.integers(0,12,(8,192,256,1)).astype("int32")
m.train_on_batch(x,y); m.train_on_batch(x,y)
t=time.perf_counter(); m.train_on_batch(x,y); print("step", time.perf_counter()-t)
d="/tmp/profile_"+enc
tf.profiler.experimental.start(d)
for _ in range(2): m.train_on_batch(x,y)
tf.profiler.experimental.stop()
from tensorflow.tsl.profiler.protobuf import xplane_pb2
f=sorted(glob.glob(d+"/**/*.xplane.pb",recursive=True))[-1]
xs=xplane_pb2.XSpace(); xs.ParseFromString(open(f,"rb").read())
bytype=collections.Counter()
for p in xs.planes:
    for line in p.lines:
        if line.name=="python": continue
        for ev in line.events:
            md=p.event_metadata[ev.metadata_id]
            name=md.display_name or md.name
            bytype[name.split(":")[-1]]+=ev.duration_ps/1e9/2
print("ms per step by op type (ExecutorState::Process and ParallelFor enclose the ops):")
for k,v in bytype.most_common(25): print(f"{v:8.1f} ms  {k}")
