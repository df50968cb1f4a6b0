/**
 * PyTorch checkpoints as a compressible format: every method writes a `.safetensors` file
 * next to the checkpoint (safetensors is the format the ecosystem is moving to because
 * loading it runs no code), with the safetensors writer, traits and size predictor.
 */
import type { FormatCompression } from '../formats/capabilities';
import { compressSafetensorsChoices } from './safetensors';
import { safetensorsCompression } from './safetensorsFormat';

export const pytorchCompression: FormatCompression = {
  ...safetensorsCompression,
  output: { format: 'safetensors', extension: '.safetensors' },
  compress: (model, choices, context, output) =>
    compressSafetensorsChoices(
      model.path,
      model,
      new Map(choices.map((choice) => [choice.entry.info.index, choice.options])),
      context,
      output,
      { metadata: { 'layerlens.source_format': 'pytorch' }, extension: '.safetensors' },
    ),
};
