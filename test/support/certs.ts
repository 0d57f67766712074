// Test certificates made with openssl: a CA and leaf certificates it signs, each with the
// subjectAltName given (IP:127.0.0.1 for a server on loopback, URI:spiffe://... for a client).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCa {
  /** Where ca.pem, ca.key and each leaf's NAME.pem / NAME.key are. */
  dir: string;
  /** Signs a leaf: NAME.pem and NAME.key in dir. */
  leaf(name: string, subject: string, san: string): void;
}

/** A CA (ca.pem, ca.key) in dir, valid two days. */
export function makeCa(dir: string): TestCa {
  const openssl = (...args: string[]) => { execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }); };
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=graylane test CA");
  return {
    dir,
    leaf(name, subject, san) {
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
      openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
      openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`);
    },
  };
}
