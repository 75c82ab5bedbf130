import { describe, expect, it } from 'vitest';
import { WardenError } from '../errors.js';
import { originGuard } from './origin-guard.js';

const guard = originGuard({
  publicUrl: 'https://mcp.example.com',
  allowedHosts: ['warden.internal'],
  allowedOrigins: ['https://console.example.com'],
});

function refused(host: string | undefined, origin?: string): string | undefined {
  try {
    guard(host, origin);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).status).toBe(403);
    return (e as WardenError).rule;
  }
}

describe('originGuard (DNS-rebinding protection)', () => {
  it('accepts IP literals, loopback names, the public host and allowed hosts', () => {
    for (const host of [
      '127.0.0.1:8787',
      '[::1]:8787',
      '10.1.2.3',
      'localhost:8787',
      'LOCALHOST',
      'mcp.example.com',
      'MCP.example.com:443',
      'warden.internal',
    ]) {
      expect(refused(host), host).toBeUndefined();
    }
    expect(refused(undefined)).toBeUndefined();
  });

  it('refuses other names and malformed Host values', () => {
    for (const host of [
      'evil.example.com',
      'evil.example.com:8787',
      'mcp.example.com.evil.net',
      'a@b',
      'x/y',
      '',
    ]) {
      expect(refused(host), host).toBe('request.host');
    }
  });

  it('accepts loopback origins, the public origin and allowed origins; refuses the rest and "null"', () => {
    for (const origin of [
      'http://localhost:6274',
      'http://127.0.0.1:3000',
      'https://mcp.example.com',
      'https://console.example.com',
    ]) {
      expect(refused('127.0.0.1', origin), origin).toBeUndefined();
    }
    for (const origin of [
      'http://evil.example.com',
      'https://console.example.com:8443',
      'http://mcp.example.com',
      'null',
      'garbage',
    ]) {
      expect(refused('127.0.0.1', origin), origin).toBe('request.origin');
    }
  });
});
