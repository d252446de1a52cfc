import * as tf from '@tensorflow/tfjs';

/**
 * An inference-only copy of a model with every Conv2D -> BatchNormalization (-> ReLU) chain folded
 * into one Conv2D with bias (and fused ReLU): W' = W * gamma / sigma, b' = beta + (b - mean) * gamma / sigma,
 * sigma = sqrt(moving_variance + epsilon). Inference maths is unchanged up to float rounding (tested),
 * but the native backend runs one FusedConv2D op where it ran a conv, a batch norm and a ReLU over the
 * full activation map: labeling 80k images through the resnet-9 oracle is the hot loop of the attack.
 *
 * Why by hand: TF.js has no graph optimiser for layers models (tfjs-converter folds BN only when
 * converting from TensorFlow graphs). The copy is rebuilt from the standard model.json topology, so
 * nothing is shared with (or disposed from) the original. Returns null when there is nothing to fold.
 */
type LayerJson = { class_name: string; name: string; config: Record<string, unknown>; inbound_nodes: unknown[][][] };

export async function foldBatchNorm(model: tf.LayersModel): Promise<tf.LayersModel | null> {
  const topology = JSON.parse(JSON.stringify(model.toJSON(null, false))) as { class_name: string; config: { layers: LayerJson[]; output_layers: unknown[][] } };
  // Only functional models (every architecture of the registry) carry the graph this needs.
  if (topology.class_name !== 'Model' || !Array.isArray(topology.config?.layers) || topology.config.layers.some((l) => !Array.isArray(l.inbound_nodes))) return null;
  const layers = topology.config.layers;
  const byName = new Map(layers.map((l) => [l.name, l]));
  const consumers = new Map<string, string[]>();
  const consume = (from: string, by: string) => consumers.set(from, [...(consumers.get(from) ?? []), by]);
  for (const l of layers) for (const node of l.inbound_nodes) for (const inb of node) consume(inb[0] as string, l.name);
  for (const o of topology.config.output_layers) consume(o[0] as string, '(model output)');

  const values = new Map<string, tf.Tensor>();
  const current = model.getWeights();
  model.weights.forEach((w, i) => values.set(w.originalName, current[i]));
  const replaced = new Map<string, tf.Tensor>();
  const removed = new Set<string>();
  const rename = new Map<string, string>();

  for (const conv of layers) {
    if (conv.class_name !== 'Conv2D' || conv.config.activation !== 'linear' || conv.inbound_nodes.length !== 1) continue;
    const next = consumers.get(conv.name) ?? [];
    const bn = next.length === 1 ? byName.get(next[0]) : undefined;
    if (!bn || bn.class_name !== 'BatchNormalization' || bn.inbound_nodes.length !== 1) continue;
    if (!(bn.config.axis === -1 || bn.config.axis === 3) || bn.config.center !== true || bn.config.scale !== true) continue;
    let last = bn.name;
    let activation = 'linear';
    const afterBn = consumers.get(bn.name) ?? [];
    const act = afterBn.length === 1 ? byName.get(afterBn[0]) : undefined;
    if (act && act.class_name === 'Activation' && act.config.activation === 'relu' && act.inbound_nodes.length === 1) {
      last = act.name;
      activation = 'relu';
      removed.add(act.name);
    }
    removed.add(bn.name);
    rename.set(last, conv.name);
    const get = (n: string): tf.Tensor => {
      const t = values.get(n);
      if (!t) throw new Error(`foldBatchNorm: weight ${n} not found in model '${model.name}'`);
      return t;
    };
    const eps = Number(bn.config.epsilon);
    const [k, b] = tf.tidy(() => {
      const scale = tf.div(get(`${bn.name}/gamma`), tf.sqrt(tf.add(get(`${bn.name}/moving_variance`), eps)));
      const oldBias = conv.config.use_bias ? get(`${conv.name}/bias`) : tf.zerosLike(get(`${bn.name}/beta`));
      return [tf.mul(get(`${conv.name}/kernel`), scale), tf.add(get(`${bn.name}/beta`), tf.mul(tf.sub(oldBias, get(`${bn.name}/moving_mean`)), scale))];
    });
    replaced.set(`${conv.name}/kernel`, k);
    replaced.set(`${conv.name}/bias`, b);
    conv.config.use_bias = true;
    conv.config.activation = activation;
  }
  if (removed.size === 0) return null;

  try {
    topology.config.layers = layers.filter((l) => !removed.has(l.name));
    const relink = (inb: unknown[]) => {
      const to = rename.get(inb[0] as string);
      if (to) inb[0] = to;
    };
    for (const l of topology.config.layers) for (const node of l.inbound_nodes) node.forEach(relink);
    topology.config.output_layers.forEach(relink);

    const named: tf.NamedTensorMap = {};
    for (const [name, t] of values) {
      const layer = name.split('/')[0];
      if (!removed.has(layer)) named[name] = t;
    }
    for (const [name, t] of replaced) named[name] = t;
    const { data, specs } = await tf.io.encodeWeights(named);
    return await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'], weightSpecs: specs, weightData: data }));
  } finally {
    tf.dispose([...replaced.values()]);
  }
}
