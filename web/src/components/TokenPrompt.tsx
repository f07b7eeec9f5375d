// Shown instead of the market when the server wants an access token (`api.protect_reads`):
// what is needed, where to find it, and a field to paste it. The input is uncontrolled and has no
// name, so the token is never mirrored into an HTML attribute nor submitted in a query string.
import { KeyRound, LockKeyhole } from "lucide-react";
import { useRef, useState, type FormEvent } from "react";
import { cleanToken } from "../lib/token";

interface Props {
  /** Whether a token was offered (and refused) or none was known. */
  refused: boolean;
  onSubmit: (token: string) => void;
}

export function TokenPrompt({ refused, onSubmit }: Props) {
  const input = useRef<HTMLInputElement>(null);
  const [invalid, setInvalid] = useState(false);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const field = input.current;
    if (field === null) return;
    const token = cleanToken(field.value);
    setInvalid(token === null);
    if (token === null) return;
    field.value = "";
    onSubmit(token);
  };

  return (
    <main className="layout single">
      <section className="card token-card" aria-labelledby="token-title" data-testid="token-prompt">
        <h2 id="token-title">
          <LockKeyhole size={18} aria-hidden /> This server needs an access token
        </h2>
        <p role="alert" data-testid="token-message" data-state={refused ? "refused" : "missing"}>
          {refused
            ? "The server refused the token this page offered. Paste the current one below."
            : "This CryptoPulse server shows market data only to holders of its access token."}
        </p>
        <p className="muted">
          Open the dashboard link that <code>cryptopulse up</code> prints (it carries the token after{" "}
          <code>#token=</code>), or paste the token from the file <code>.cryptopulse/secrets/ingest-token</code> next to
          the pipeline (or the server&apos;s <code>api.token</code> setting). It stays in this tab only.
        </p>
        <form className="token-form" onSubmit={submit} noValidate>
          <label htmlFor="token-input">Access token</label>
          <input
            id="token-input"
            ref={input}
            type="password"
            autoComplete="off"
            autoCapitalize="off"
            spellCheck={false}
            required
            aria-invalid={invalid}
            aria-describedby={invalid ? "token-invalid" : undefined}
            data-testid="token-input"
          />
          <button type="submit" data-testid="token-submit">
            <KeyRound size={14} aria-hidden /> Use token
          </button>
        </form>
        {invalid && (
          <p id="token-invalid" className="token-invalid" role="alert">
            That is not a token: paste it without spaces or quotes.
          </p>
        )}
      </section>
    </main>
  );
}
