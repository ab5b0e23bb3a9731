/**
 * The field a refused request names, read from gRPC's rich error trailer
 * (`grpc-status-details-bin`: a google.rpc.Status whose details hold a
 * google.rpc.BadRequest), not parsed out of the message.
 *
 * Only the few fields needed are read, by their numbers in
 * google/rpc/status.proto and google/rpc/error_details.proto (numbers never
 * change in protobuf); everything else is skipped.
 */
import type { Metadata } from "@grpc/grpc-js";
import { BinaryReader } from "@bufbuild/protobuf/wire";

const STATUS_DETAILS = "grpc-status-details-bin";
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

/** Calls `visit(fieldNo, reader)` for each field of a message; `visit`
 * returns true when it consumed the value, else the value is skipped. */
function eachField(bytes: Uint8Array, visit: (fieldNo: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (!visit(fieldNo, reader)) reader.skip(wireType, fieldNo);
  }
}

function badRequestFields(badRequest: Uint8Array): string[] {
  const fields: string[] = [];
  // BadRequest.field_violations = 1; FieldViolation.field = 1.
  eachField(badRequest, (no, reader) => {
    if (no !== 1) return false;
    eachField(reader.bytes(), (inner, r) => {
      if (inner !== 1) return false;
      fields.push(r.string());
      return true;
    });
    return true;
  });
  return fields;
}

/** The first field a BadRequest detail of the trailer names; undefined when
 * there is none (or the trailer cannot be read). */
export function badRequestField(metadata: Metadata): string | undefined {
  const [raw] = metadata.get(STATUS_DETAILS);
  if (!raw || typeof raw === "string") return undefined;
  try {
    let found: string | undefined;
    // Status.details = 3 (repeated Any); Any.type_url = 1, Any.value = 2.
    eachField(raw, (no, reader) => {
      if (no !== 3) return false;
      let typeUrl = "";
      let value: Uint8Array | undefined;
      eachField(reader.bytes(), (inner, r) => {
        if (inner === 1) typeUrl = r.string();
        else if (inner === 2) value = r.bytes();
        else return false;
        return true;
      });
      if (found === undefined && typeUrl === BAD_REQUEST_TYPE && value) {
        found = badRequestFields(value).find((field) => field !== "");
      }
      return true;
    });
    return found;
  } catch {
    return undefined; // a malformed trailer names no field; the message still says why
  }
}
