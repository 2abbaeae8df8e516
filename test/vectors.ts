/**
 * Loads the C2SP test vectors computed by the Go reference packages (golang.org/x/mod
 * sumdb/tlog + note) and cross-checked by an independent Python derivation.
 * They live in test/vectors/ (see its README for where they come from).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const VECTORS_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'vectors/c2sp-vectors.json');

export interface RootVector {
  size: number;
  root_hex: string;
  root_b64: string;
}

export interface KeyVector {
  name: string;
  ed25519_seed_hex: string;
  ed25519_public_key_hex: string;
  signature_type_byte: string;
  key_id_hex: string;
  key_id_preimage_hex: string;
  vkey: string;
  skey_TEST_ONLY: string;
}

export interface C2spVectors {
  generator: string;
  conventions: string[];
  empty_tree_root: RootVector;
  leaf_hashes: { index: number; entry_ascii: string; leaf_hash_hex: string; leaf_hash_b64: string }[];
  roots: RootVector[];
  tile_paths: { level: number; index: number; width: number; path: string }[];
  tiles_for_tree_size: {
    tree_size: number;
    full_tiles_per_level: number[];
    partial_tile_paths: string[];
    partial_or_last_bundle_paths: string[];
  }[];
  tile_contents_tree_70000: {
    path: string;
    length_bytes: number;
    sha256_of_body_hex: string;
    first_hash_b64?: string;
    last_hash_b64?: string;
    first_16_bytes_hex: string;
  }[];
  inclusion_proofs: {
    leaf_index: number;
    tree_size: number;
    leaf_hash_b64: string;
    root_b64: string;
    proof_b64: string[];
  }[];
  consistency_proofs: {
    old_size: number;
    new_size: number;
    old_root_b64: string;
    new_root_b64: string;
    proof_b64: string[];
  }[];
  log_key: KeyVector;
  checkpoint_1000: {
    origin: string;
    tree_size: number;
    root_b64: string;
    checkpoint_body: string;
    signed_note: string;
    log_signature_line: string;
    log_signature_blob_hex: string;
  };
  witness_key: KeyVector;
  cosignature_v1_ed25519: {
    cosigner_name: string;
    timestamp: number;
    signed_message: string;
    signed_message_hex: string;
    signature_blob_hex: string;
    cosignature_line: string;
    cosigned_note: string;
  };
  mldsa44_cosigned_message_bytes: {
    cosigner_name: string;
    timestamp: number;
    log_origin: string;
    start: number;
    end: number;
    hash_b64: string;
    cosigned_message_hex: string;
  };
  witness_add_checkpoint_example: {
    add_checkpoint_request_body: string;
    expected_200_response_body_at_timestamp: string;
    example_409_body_if_witness_is_at_1000: string;
    example_409_content_type: string;
    signed_checkpoint_70000: string;
    cosigned_checkpoint_70000: string;
  };
  go_self_checks: Record<string, boolean>;
  mldsa44_cosignature_openssl: {
    cosigner_name: string;
    mldsa44_seed_hex: string;
    public_key_b64: string;
    key_id_hex: string;
    vkey: string;
    signed_message_hex: string;
    example_cosignature_line: string;
  };
  python_cross_checks: string[];
}

export const vectors: C2spVectors = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as C2spVectors;

export const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const toHexes = (l: readonly Uint8Array[]): string[] => l.map(toHex);
/** The vectors' entries: the ASCII bytes `entry-<i>`. */
export const entry = (i: number): Uint8Array => new Uint8Array(Buffer.from(`entry-${i}`, 'ascii'));
