import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A tiny sentence-transformers-like model, built in plain JavaScript, in the layout Transformers.js loads for
 * `feature-extraction`: `config.json` (a BERT), `tokenizer.json` + `tokenizer_config.json` (WordPiece, lower
 * case) and `onnx/model.onnx`. The ONNX graph looks a token's vector up in an embedding table and zeroes the
 * padding (`last_hidden_state = Gather(table, input_ids) * attention_mask`); the pipeline's mean pooling and
 * normalisation do the rest. Words of one {@link CONCEPTS} group get nearly the same vector (each group its own
 * axis, each word a small deterministic nudge), so synonyms no lexical embedder can relate come out close.
 */

/** Words that mean the same, one group per axis of the embedding. */
export const CONCEPTS: readonly (readonly string[])[] = [
  ['car', 'automobile', 'vehicle'],
  ['doctor', 'physician', 'medic'],
  ['happy', 'glad', 'joyful'],
  ['banana', 'plantain'],
  ['guitar'],
  ['ocean', 'sea'],
  ['buy', 'purchase'],
  ['fast', 'quick', 'rapid'],
];
/** Words every sentence has: short vectors along their own axis, so they barely move a sentence's mean. */
export const FUNCTION_WORDS: readonly string[] = ['the', 'a', 'an', 'my', 'is', 'to', 'of', 'and', 'i', 'we'];
const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
/** One axis per concept, one for function words, one for unknown words, and a few for the per-word nudges. */
export const TINY_DIMENSIONS = CONCEPTS.length + 2 + 6;
const FUNCTION_AXIS = CONCEPTS.length;
const UNKNOWN_AXIS = CONCEPTS.length + 1;
const NUDGE_AXES = TINY_DIMENSIONS - UNKNOWN_AXIS - 1;

/** The WordPiece vocabulary: specials first (ids 0–4, BERT's order is not required, only consistency). */
export function tinyVocabulary(): string[] {
  return [...SPECIAL, ...CONCEPTS.flat(), ...FUNCTION_WORDS, '.', ',', '!', '?'];
}

/** A deterministic small number in [-1, 1) from a word and an axis (no Math.random: same model every run). */
function jitter(word: string, axis: number): number {
  let hash = 0x811c9dc5 ^ axis;
  for (let i = 0; i < word.length; i++) hash = Math.imul(hash ^ word.charCodeAt(i), 0x01000193);
  return ((hash >>> 0) / 0x1_0000_0000) * 2 - 1;
}

/** The `[vocabulary, dimensions]` embedding table, row-major. */
export function tinyEmbeddingTable(vocabulary: readonly string[] = tinyVocabulary()): Float32Array {
  const table = new Float32Array(vocabulary.length * TINY_DIMENSIONS);
  vocabulary.forEach((word, id) => {
    const row = table.subarray(id * TINY_DIMENSIONS, (id + 1) * TINY_DIMENSIONS);
    const concept = CONCEPTS.findIndex((words) => words.includes(word));
    if (concept >= 0) {
      row[concept] = 1;
      for (let k = 0; k < NUDGE_AXES; k++) row[UNKNOWN_AXIS + 1 + k] = 0.05 * jitter(word, k);
    } else if (FUNCTION_WORDS.includes(word) || /^[.,!?]$/.test(word)) {
      row[FUNCTION_AXIS] = 0.1;
    } else if (word === '[UNK]') {
      row[UNKNOWN_AXIS] = 0.3;
    }
    // [PAD], [CLS], [SEP], [MASK]: the zero vector, they carry no meaning.
  });
  return table;
}

// ---- A minimal protobuf writer, enough for an ONNX ModelProto ----------------------------------------------
// Field numbers from onnx/onnx.proto (checked against onnxruntime-web's generated onnx.js).

type Field = Uint8Array;

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return bytes;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A varint field (wire type 0). */
function int(field: number, value: number | bigint): Field {
  return Uint8Array.from([...varint(field << 3), ...varint(value)]);
}

/** A length-delimited field (wire type 2): bytes, a string, or an embedded message. */
function bytes(field: number, value: Uint8Array | string): Field {
  const body = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  return concat([Uint8Array.from([...varint((field << 3) | 2), ...varint(body.length)]), body]);
}

const message = (...fields: Field[]) => concat(fields);

/** TensorProto.DataType */
const FLOAT = 1;
const INT64 = 7;
/** AttributeProto.AttributeType */
const ATTRIBUTE_INT = 2;

/** Dimension: a fixed size (dim_value = 1) or a named, free one (dim_param = 2). */
const dimension = (dim: number | string) => (typeof dim === 'number' ? int(1, dim) : bytes(2, dim));

/** ValueInfoProto { name = 1, type = 2 } of TypeProto { tensor_type = 1 { elem_type = 1, shape = 2 } }. */
function tensorValue(name: string, elemType: number, dims: (number | string)[]): Field {
  const shape = message(...dims.map((dim) => bytes(1, dimension(dim))));
  const tensorType = message(int(1, elemType), bytes(2, shape));
  return message(bytes(1, name), bytes(2, message(bytes(1, tensorType))));
}

/** TensorProto { dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian) }. */
function tensor(name: string, dataType: number, dims: number[], raw: Uint8Array): Field {
  return message(...dims.map((dim) => int(1, dim)), int(2, dataType), bytes(8, name), bytes(9, raw));
}

/** AttributeProto { name = 1, i = 3, type = 20 } of an integer. */
const intAttribute = (name: string, value: number) =>
  message(bytes(1, name), int(3, value), int(20, ATTRIBUTE_INT));

/** NodeProto { input = 1, output = 2, name = 3, op_type = 4, attribute = 5 }. */
function node(opType: string, inputs: string[], outputs: string[], attributes: Field[] = []): Field {
  return message(
    ...inputs.map((input) => bytes(1, input)),
    ...outputs.map((output) => bytes(2, output)),
    bytes(3, `${opType}_${outputs[0]}`),
    bytes(4, opType),
    ...attributes.map((attribute) => bytes(5, attribute)),
  );
}

/**
 * The ONNX model (opset 13, IR version 8):
 * `last_hidden_state[b, s, :] = table[input_ids[b, s]] * float(attention_mask[b, s])`.
 */
export function tinyOnnxModel(table: Float32Array, vocabularySize: number, dimensions: number): Uint8Array {
  const rawTable = new Uint8Array(table.buffer, table.byteOffset, table.byteLength);
  const axes = new Uint8Array(new BigInt64Array([-1n]).buffer);
  const graph = message(
    // node = 1
    bytes(1, node('Gather', ['embeddings', 'input_ids'], ['token_vectors'], [intAttribute('axis', 0)])),
    bytes(1, node('Cast', ['attention_mask'], ['mask_float'], [intAttribute('to', FLOAT)])),
    bytes(1, node('Unsqueeze', ['mask_float', 'last_axis'], ['mask_column'])),
    bytes(1, node('Mul', ['token_vectors', 'mask_column'], ['last_hidden_state'])),
    // name = 2
    bytes(2, 'tiny-sentence-encoder'),
    // initializer = 5
    bytes(5, tensor('embeddings', FLOAT, [vocabularySize, dimensions], rawTable)),
    bytes(5, tensor('last_axis', INT64, [1], axes)),
    // input = 11, output = 12
    bytes(11, tensorValue('input_ids', INT64, ['batch_size', 'sequence_length'])),
    bytes(11, tensorValue('attention_mask', INT64, ['batch_size', 'sequence_length'])),
    bytes(12, tensorValue('last_hidden_state', FLOAT, ['batch_size', 'sequence_length', dimensions])),
  );
  return message(
    int(1, 8), // ir_version
    bytes(2, 'aiva-tests'), // producer_name
    bytes(7, graph), // graph
    bytes(8, message(bytes(1, ''), int(2, 13))), // opset_import: the default domain, opset 13
  );
}

/** tokenizer.json of a BERT-style, lower-casing WordPiece tokenizer over `vocabulary`. */
export function tinyTokenizerJson(vocabulary: readonly string[]): object {
  const id = (token: string) => vocabulary.indexOf(token);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((token) => ({
      id: id(token),
      content: token,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [id('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [id('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocabulary.map((token, index) => [token, index])),
    },
  };
}

export interface TinyModel {
  /** The model directory (`<parent>/<name>`). */
  dir: string;
  dimensions: number;
}

/** Writes the tiny model into `<parent>/<name>`: config.json, tokenizer files, onnx/model.onnx. */
export async function writeTinyOnnxModel(parent: string, name = 'tiny-minilm'): Promise<TinyModel> {
  const dir = join(parent, name);
  const vocabulary = tinyVocabulary();
  await mkdir(join(dir, 'onnx'), { recursive: true });
  const json = (file: string, value: object) =>
    writeFile(join(dir, file), `${JSON.stringify(value, null, 2)}\n`);
  await json('config.json', {
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_size: TINY_DIMENSIONS,
    num_hidden_layers: 0,
    num_attention_heads: 1,
    intermediate_size: TINY_DIMENSIONS,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    vocab_size: vocabulary.length,
    pad_token_id: vocabulary.indexOf('[PAD]'),
  });
  await json('tokenizer.json', tinyTokenizerJson(vocabulary));
  await json('tokenizer_config.json', {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    model_max_length: 512,
    clean_up_tokenization_spaces: true,
    unk_token: '[UNK]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    cls_token: '[CLS]',
    mask_token: '[MASK]',
  });
  await writeFile(
    join(dir, 'onnx', 'model.onnx'),
    tinyOnnxModel(tinyEmbeddingTable(vocabulary), vocabulary.length, TINY_DIMENSIONS),
  );
  return { dir, dimensions: TINY_DIMENSIONS };
}
