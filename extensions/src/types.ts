// The traits the Python `Annotator` syncs (see workbench/widgets/_annotator.py).

export interface Shortcut {
  keys: string;
  action: string;
  description: string;
}

export interface Status {
  item_id: number | null;
  item_key: string;
  position: number;
  served: number;
  labelled: number;
  budget: number;
  model_version_id: number | null;
  seconds_on_item: number;
  revising: boolean;
  proposal_class: number | null;
  edited: boolean;
  rejected: boolean;
  can_undo: boolean;
  can_redo: boolean;
  done: boolean;
  message: string;
  sent_at: number;
}

export interface Proposal {
  model_version_id?: number | null;
  mask?: boolean;
  probs?: number[];
  class?: number | null;
}

export type Binary = DataView | ArrayBuffer | Uint8Array | null | undefined;

export interface AnnotatorModel {
  task: "classification" | "segmentation";
  classes: string[];
  image: Binary;
  image_shape: number[];
  image_key: string;
  window_key: string;
  pixel_aspect: number;
  uncertainty: Binary;
  view_key: string;
  status: Status;
  proposal: Proposal;
  shortcuts: Shortcut[];
  presets: string[];
  n_slices: number;
  error: string;
  axis: string;
  slice_index: number;
  window_center: number;
  window_width: number;
  opacity: number;
  outline: boolean;
  show_uncertainty: boolean;
  tool: string;
  brush_radius: number;
  brush_value: number;
  display_size: number;
  show_help: boolean;
}

/** Bytes of a binary trait or message buffer, without copying. */
export function bytes(value: Binary): Uint8Array {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}
