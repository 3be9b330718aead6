// Runs a TensorFlow.js graph model on one raw float32 input with TensorFlow.js itself (pure-JS
// CPU backend), so that tests can compare the ONNX conversion with the original model.
//
// Usage: node tfjs_reference.js MODEL_JSON INPUT_BIN SHAPE OUTPUTS OUT_DIR
//   SHAPE    comma-separated input shape, e.g. 1,512,512,3
//   OUTPUTS  comma-separated output node names, e.g. tower_0/keypoints,tower_0/wh
// Writes OUT_DIR/<i>.bin (float32, little-endian) per output and prints
// {"outputs": [{"name", "shape", "file"}]} as JSON. Needs @tensorflow/tfjs-core,
// tfjs-backend-cpu and tfjs-converter on NODE_PATH (scripts/install.sh installs them).
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

function weightsOf(model, dir) {
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
  }
  const all = Buffer.concat(buffers);
  return { specs, data: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) };
}

async function main() {
  const [modelJson, inputBin, shapeCsv, outputsCsv, outDir] = process.argv.slice(2);
  if (!outDir) {
    throw new Error('usage: node tfjs_reference.js MODEL_JSON INPUT_BIN SHAPE OUTPUTS OUT_DIR');
  }
  await tf.setBackend('cpu');
  const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const weights = weightsOf(model, path.dirname(modelJson));
  const graph = await converter.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: model.modelTopology,
      weightSpecs: weights.specs,
      weightData: weights.data,
      format: model.format,
      signature: model.signature,
    }),
  );
  const raw = fs.readFileSync(inputBin);
  const values = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const input = tf.tensor(values, shapeCsv.split(',').map(Number), 'float32');
  const names = outputsCsv.split(',');
  let results = graph.execute(input, names);
  if (!Array.isArray(results)) results = [results];
  const report = { outputs: [] };
  for (let i = 0; i < results.length; i++) {
    const data = await results[i].data();
    const file = path.join(outDir, `${i}.bin`);
    fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    report.outputs.push({ name: names[i], shape: results[i].shape, file });
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
