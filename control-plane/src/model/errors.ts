// The API's error shape: every problem with a JSON Pointer to where it is.

export interface FieldError {
  path: string;
  message: string;
}

/** JSON Pointer (RFC 6901) of a path of keys and indexes. */
export function pointer(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}
