import { describe, expect, it } from 'vitest';
import { detectPii, type PiiType } from './index.js';
import { EXTRA_PII_TYPES } from './pii.js';

/** The [type, matched original text] pairs found in `text`. */
const found = (text: string, types?: readonly PiiType[]) =>
  detectPii(text, types ? { types } : {}).map((f) => [f.type, text.slice(f.start, f.end)]);

describe('detectPii: credit cards (Luhn)', () => {
  it.each([
    ['4111111111111111'],
    ['4111 1111 1111 1111'],
    ['5500-0000-0000-0004'],
    ['378282246310005'],
    ['3782 822463 10005'],
    ['6011000990139424'],
  ])('finds %s', (card) => {
    expect(found(`pay with ${card} today`)).toEqual([['CREDIT_CARD', card]]);
  });

  it.each([
    ['4111111111111112', 'Luhn fails'],
    ['41111111111111111111', 'too long'],
    ['4111 1111-1111 1111', 'mixed separators'],
    ['0000000000000000', 'one digit repeated'],
  ])('refuses %s (%s)', (card) => {
    expect(found(`pay with ${card} today`, ['CREDIT_CARD'])).toEqual([]);
  });

  it('takes a 12-digit number only with a Maestro prefix', () => {
    expect(found('card 501864667909 lost', ['CREDIT_CARD'])).toEqual([['CREDIT_CARD', '501864667909']]);
    expect(found('id 100000000008 here', ['CREDIT_CARD'])).toEqual([]);
  });
});

describe('detectPii: IBAN (mod-97)', () => {
  it.each([
    ['DE89370400440532013000'],
    ['DE89 3704 0044 0532 0130 00'],
    ['GB82WEST12345698765432'],
    ['GB82 WEST 1234 5698 7654 32'],
    ['FR1420041010050500013M02606'],
    ['gb82west12345698765432'],
  ])('finds %s', (iban) => {
    expect(found(`IBAN: ${iban}. Thanks`)).toEqual([['IBAN_CODE', iban]]);
  });

  it('stops at the country length even when a word follows', () => {
    expect(found('DE89 3704 0044 0532 0130 00 Bank AG')).toEqual([
      ['IBAN_CODE', 'DE89 3704 0044 0532 0130 00'],
    ]);
  });

  it.each([
    ['GB83WEST12345698765432', 'wrong check digits'],
    ['DE8937040044053201300', 'one character short'],
    ['ZZ89370400440532013000', 'unknown country'],
  ])('refuses %s (%s)', (iban) => {
    expect(found(`IBAN: ${iban}`, ['IBAN_CODE'])).toEqual([]);
  });
});

describe('detectPii: US SSN', () => {
  it('finds a dashed SSN and a bare one next to a context word', () => {
    expect(found('record 123-45-6789 on file', ['US_SSN'])).toEqual([['US_SSN', '123-45-6789']]);
    expect(found('my SSN is 123456789', ['US_SSN'])).toEqual([['US_SSN', '123456789']]);
  });

  it('scores a bare SSN only with context', () => {
    expect(found('order 123456789 shipped', ['US_SSN'])).toEqual([]);
  });

  it.each([
    ['000-12-3456', 'area 000'],
    ['666-12-3456', 'area 666'],
    ['912-34-5678', 'area 9xx'],
    ['123-00-4567', 'group 00'],
    ['123-45-0000', 'serial 0000'],
    ['1123-45-6789', 'part of a longer number'],
  ])('refuses %s (%s)', (ssn) => {
    expect(found(`SSN ${ssn}`, ['US_SSN'])).toEqual([]);
  });
});

describe('detectPii: IP addresses', () => {
  it.each([['192.168.1.20'], ['8.8.8.8'], ['2001:db8::8a2e:370:7334'], ['fe80::1ff:fe23:4567:890a']])(
    'finds %s',
    (ip) => {
      expect(found(`host ${ip}.`)).toEqual([['IP_ADDRESS', ip]]);
    },
  );

  it.each([['999.1.1.1'], ['1.2.3.4.5'], ['01.2.3.4'], ['std::vector'], ['12:30:45']])('refuses %s', (s) => {
    expect(found(`value ${s} here`, ['IP_ADDRESS'])).toEqual([]);
  });
});

describe('detectPii: emails', () => {
  it('finds addresses and leaves trailing punctuation out', () => {
    expect(found('Write to jane.doe+x@mail.example.co.uk. Or bob@example.com!')).toEqual([
      ['EMAIL_ADDRESS', 'jane.doe+x@mail.example.co.uk'],
      ['EMAIL_ADDRESS', 'bob@example.com'],
    ]);
  });

  it.each([['@handle'], ['user@localhost'], ['a@b.c'], ['x@-bad.com']])('refuses %s', (s) => {
    expect(found(`see ${s} now`, ['EMAIL_ADDRESS'])).toEqual([]);
  });
});

describe('detectPii: phone numbers', () => {
  it.each([
    ['+1 415-555-0132'],
    ['+447700900123'],
    ['+41 (0)71 526 99 04'],
    ['(415) 555-0132'],
    ['415.555.0132'],
    ['001-518-640-0854'],
    ['345-899-3560x4587'],
  ])('finds %s without context', (phone) => {
    expect(found(`at ${phone} now`, ['PHONE_NUMBER'])).toEqual([['PHONE_NUMBER', phone]]);
  });

  it('starts a number at the sign or bracket before its first digit, not inside a word', () => {
    // The scanners visit only where digit runs start; these start one or two units earlier.
    expect(found('call +(44) 20 7946 0958 today', ['PHONE_NUMBER'])).toEqual([
      ['PHONE_NUMBER', '+(44) 20 7946 0958'],
    ]);
    expect(found('phone: (415) 555-0132', ['PHONE_NUMBER'])).toEqual([['PHONE_NUMBER', '(415) 555-0132']]);
    expect(found('x(415) 555-0132', ['PHONE_NUMBER'])).toEqual([]);
    expect(found('IBAN DE89370400440532013000 and ssn 123-45-6789')).toEqual([
      ['IBAN_CODE', 'DE89370400440532013000'],
      ['US_SSN', '123-45-6789'],
    ]);
    expect(found('a1DE89370400440532013000')).toEqual([]);
  });

  it('needs a context word for a short national number', () => {
    expect(found('Phone: 467 3395', ['PHONE_NUMBER'])).toEqual([['PHONE_NUMBER', '467 3395']]);
    expect(found('The total was 467 3395 units', ['PHONE_NUMBER'])).toEqual([]);
    expect(found('Call me on 0490 75 40 81', ['PHONE_NUMBER'])).toEqual([['PHONE_NUMBER', '0490 75 40 81']]);
  });

  it('scores context higher than shape alone', () => {
    const [bare] = detectPii('at 415-555-0132');
    const [ctx] = detectPii('call 415-555-0132');
    expect(ctx!.score).toBeGreaterThan(bare!.score);
  });

  it.each([
    ['2024-05-12', 'a date'],
    ['12.05.2024', 'a dotted date'],
    ['2024-05-12 10:30:00', 'a timestamp'],
  ])('does not take %s (%s) for a phone, even after "call"', (s) => {
    expect(found(`call ${s}`, ['PHONE_NUMBER'])).toEqual([]);
  });

  it('takes an unseparated run only with context', () => {
    expect(found('order 1234567890', ['PHONE_NUMBER'])).toEqual([]);
    expect(found('fax: 1234567890', ['PHONE_NUMBER'])).toEqual([['PHONE_NUMBER', '1234567890']]);
    expect(found('licence number 2270661', ['PHONE_NUMBER'])).toEqual([]);
  });

  it('does not read a 16-digit card as a phone', () => {
    expect(found('phone 4111 1111 1111 1111')).toEqual([['CREDIT_CARD', '4111 1111 1111 1111']]);
  });

  it('does not run a number across a line break', () => {
    expect(found('Hungary 34796\n(37) 788-063 office', ['PHONE_NUMBER'])).toEqual([
      ['PHONE_NUMBER', '(37) 788-063'],
    ]);
  });
});

describe('detectPii: street addresses (off by default)', () => {
  const addr = (text: string) => found(text, ['STREET_ADDRESS']);

  it.each([
    [
      'Ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 today',
      '1600 Pennsylvania Avenue NW, Washington, DC 20500',
    ],
    ['Send it to 221B Baker Street, London NW1 6XE.', '221B Baker Street, London NW1 6XE'],
    [
      'I live at 42 Oak St. Apt 5, Springfield, IL 62704-1234',
      '42 Oak St. Apt 5, Springfield, IL 62704-1234',
    ],
    [
      'office: 398 11th Street  2nd Floor  San Francisco  CA 94103',
      '398 11th Street  2nd Floor  San Francisco  CA 94103',
    ],
    ['Meet me at 15 Millicent Drive\nAuckland', '15 Millicent Drive\nAuckland'],
    ['The shop is at 24 St. John Road.', '24 St. John Road'],
    ['Lieferung an Hauptstraße 12, 10115 Berlin', 'Hauptstraße 12, 10115 Berlin'],
    ['Villacher Strasse 89 is closed', 'Villacher Strasse 89'],
    ['Bureau: Rue de Rivoli 5', 'Rue de Rivoli 5'],
    ['Lives at 29 rue de Tanger now', '29 rue de Tanger'],
    ['Via Roma 131, Milano', 'Via Roma 131, Milano'],
    ['Rákóczi út 66. Apt 2', 'Rákóczi út 66. Apt 2'],
    ['PSC 6695, Box 2353 APO AP 20849', 'PSC 6695, Box 2353 APO AP 20849'],
    ['Write to P.O. Box 211', 'P.O. Box 211'],
  ])('finds the address in %j', (text, want) => {
    expect(addr(text)).toEqual([['STREET_ADDRESS', want]]);
  });

  it('validates the code after the city: a US state and ZIP, a UK postcode', () => {
    const [us] = detectPii('12 Elm Street, Dover, DE 19901', { types: ['STREET_ADDRESS'] });
    const [plain] = detectPii('12 Elm Street, Dover', { types: ['STREET_ADDRESS'] });
    expect(us!.score).toBeGreaterThan(plain!.score);
    // "ZZ" is no state: the span still runs to the postal code, but scores as unvalidated.
    const [zz] = detectPii('12 Elm Street, Dover, ZZ 19901', { types: ['STREET_ADDRESS'] });
    expect(zz!.score).toBe(plain!.score);
    const [uk] = detectPii('12 Elm Street, Dover CT16 1AA', { types: ['STREET_ADDRESS'] });
    expect(uk!.score).toBe(us!.score);
  });

  it.each([
    ['Order 12 Main items shipped', 'no street word'],
    ['Apple Street Fighter 2 is out', 'no house number first'],
    ['Street Fighter 2 Turbo', 'a title'],
    ['upgrade to v1.2.3 Street edition', 'a version string'],
    ['the 2 Supreme Court justices dissented', 'an ordinary noun phrase'],
    ['Chapter 11 Bankruptcy Court filing', 'a title word before the number'],
    ['Section 230 Main Street rules', 'a title word before the number'],
    ['buy a 2 TB Hard Drive today', 'a product'],
    ['it has 4 Wheel Drive.', 'a product'],
    ['at 5 Times Square we met', 'an ambiguous street word followed by prose'],
    ['I walked 5 miles down the road', 'lower-case name words'],
    ['paid 20 via PayPal', 'English "via"'],
    ['Radweg 5 km lang', 'a measure, not a house number'],
    ['the Light Brigade 7 rode', 'a -gade word with a short stem'],
    ['Platz 1 im Ranking', 'a street word with no name'],
    ['Spring 2024 release', 'not a street word'],
    ['Rue de la 5', 'particles only'],
    ['$12 Main Street Fund', 'an amount'],
    ['at 10:30 Park Avenue', 'a clock time'],
  ])('refuses %j (%s)', (text) => {
    expect(addr(text)).toEqual([]);
  });
});

describe('detectPii: person names (off by default, context only)', () => {
  const person = (text: string) => found(text, ['PERSON']);

  it.each([
    ['Please ask Dr. Jane Smith about it', 'Jane Smith'],
    ["Mr. O'Brien called", "O'Brien"],
    ['Ms Anne-Marie McDonald signed', 'Anne-Marie McDonald'],
    ['Prof. Iva D. Grusová', 'Iva D. Grusová'],
    ['Name: Iva D. Grusová\nAddress: PSC 6695', 'Iva D. Grusová'],
    ['Order 17\nCustomer: Lara Pottinger\nTotal: 12', 'Lara Pottinger'],
    ['> Contact name: Jamie Pratt', 'Jamie Pratt'],
    ['Hi, my name is Rubija', 'Rubija'],
    ['Dear David,\nYour invoice is ready', 'David'],
    ['Dear Ms. Lantos,', 'Lantos'],
    ['See you soon.\nRegards,\nSrinivas', 'Srinivas'],
    ['From: Jane Doe <jane@example.com>', 'Jane Doe'],
    ['From: "Jane Doe" <jane@example.com>', 'Jane Doe'],
  ])('finds the name in %j', (text, want) => {
    expect(person(text)).toEqual([['PERSON', want]]);
  });

  it('ends a labelled name at the end of its line', () => {
    expect(person('Name: Erlendur Hafliðason\nPhone Number')).toEqual([['PERSON', 'Erlendur Hafliðason']]);
  });

  it.each([
    ['Dr. Pepper is a soft drink', 'a brand'],
    ['Dear customer,', 'lower case'],
    ['Dear Valued Customer,', 'not a name'],
    ['Dear Sir or Madam,', 'not a name'],
    ['Alice Johnson went home', 'a bare capitalised pair'],
    ['The Quick Brown Fox', 'a bare capitalised run'],
    ['Name: Deploy', 'one word after a label'],
    ['File name: Quarterly Report', 'a label that does not open its line'],
    ['Username: John Smith', 'a longer word ending in the label'],
    ['Contact: Sales Team', 'not a name'],
    ['Contact: Support', 'not a name'],
    ['Customer: Acme Corp', 'an organisation'],
    ['{"name": "Apple Watch"}', 'a quoted JSON value'],
    ['Regards, The Calendly Team', 'not a name'],
    ['Thanks, Great work on this', 'the sign-off does not close its line'],
    ['EMAIL_FROM: Srinivas from Calendly <product@calendly.com>', 'not a From: header'],
    ['From: Jane Doe', 'a From: header with no address'],
    ['12 Oak Dr. Springfield', 'Dr. closing a street'],
    ['mr. smith', 'lower case'],
    ['MS Word and MS Excel', 'not an honorific'],
  ])('refuses %j (%s)', (text) => {
    expect(person(text)).toEqual([]);
  });
});

describe('detectPii: default types', () => {
  it('leaves STREET_ADDRESS and PERSON out unless asked for', () => {
    const text = 'Dear Ms. Lantos, ship to 12 Elm Street, Dover, DE 19901 or mail a@b.io';
    expect(found(text)).toEqual([['EMAIL_ADDRESS', 'a@b.io']]);
    expect(EXTRA_PII_TYPES).toEqual(['STREET_ADDRESS', 'PERSON']);
    expect(found(text, ['EMAIL_ADDRESS', ...EXTRA_PII_TYPES])).toEqual([
      ['PERSON', 'Lantos'],
      ['STREET_ADDRESS', '12 Elm Street, Dover, DE 19901'],
      ['EMAIL_ADDRESS', 'a@b.io'],
    ]);
  });

  it('offsets of the new types point at the original text', () => {
    const text = 'Dear \u200BDavid,\nlives at 1２ Elm Street';
    const fs = detectPii(text, { types: EXTRA_PII_TYPES });
    expect(fs.map((f) => [f.type, text.slice(f.start, f.end)])).toEqual([
      ['PERSON', 'David'],
      ['STREET_ADDRESS', '1２ Elm Street'],
    ]);
  });
});

describe('detectPii: normalisation and offsets', () => {
  it('finds full-width digits and reports ORIGINAL offsets', () => {
    const text = 'card: ４１１１ １１１１ １１１１ １１１１ ok';
    const [f] = detectPii(text);
    expect(f).toMatchObject({ type: 'CREDIT_CARD', start: 6 });
    expect(text.slice(f!.start, f!.end)).toBe('４１１１ １１１１ １１１１ １１１１');
  });

  it('finds an email split by zero-width characters, spanning them in the original', () => {
    const text = 'mail ja\u200Bne@exa\u200Dmple.com today';
    const fs = detectPii(text);
    expect(fs.map((f) => [f.type, f.start, f.end])).toEqual([['EMAIL_ADDRESS', 5, 23]]);
    expect(text.slice(5, 23)).toBe('ja\u200Bne@exa\u200Dmple.com');
  });

  it('returns sorted, non-overlapping findings with scores in [0, 1]', () => {
    const text =
      'SSN 123-45-6789, card 4111111111111111, ip 10.0.0.1, mail a@b.io, IBAN GB82WEST12345698765432, call +1 415 555 0132';
    const fs = detectPii(text);
    expect(fs.map((f) => f.type)).toEqual([
      'US_SSN',
      'CREDIT_CARD',
      'IP_ADDRESS',
      'EMAIL_ADDRESS',
      'IBAN_CODE',
      'PHONE_NUMBER',
    ]);
    for (let i = 1; i < fs.length; i++) expect(fs[i]!.start).toBeGreaterThanOrEqual(fs[i - 1]!.end);
    for (const f of fs) expect(f.score).toBeGreaterThan(0);
    for (const f of fs) expect(f.score).toBeLessThanOrEqual(1);
  });

  it('restricts to the requested types', () => {
    expect(found('a@b.io 10.0.0.1', ['IP_ADDRESS'])).toEqual([['IP_ADDRESS', '10.0.0.1']]);
  });

  it('terminates on 200 KB adversarial inputs', () => {
    const inputs = [
      '1'.repeat(200_000),
      '1 '.repeat(100_000),
      '1-'.repeat(100_000),
      '1.'.repeat(100_000),
      ':'.repeat(200_000),
      'a:'.repeat(100_000),
      'a'.repeat(200_000),
      '@'.repeat(200_000),
      'a@'.repeat(100_000),
      'a.'.repeat(100_000),
      'GB00'.repeat(50_000),
      '(1)'.repeat(66_000),
      '+1 '.repeat(66_000),
      '123-45-'.repeat(28_000),
      '1 Main '.repeat(28_000),
      '12 Ab Cd Ef Gh '.repeat(13_000),
      'Hauptstraße '.repeat(16_000),
      'Rue de '.repeat(28_000),
      'Dr. '.repeat(50_000),
      'Dr. Ab '.repeat(28_000),
      'Name: Ab\n'.repeat(20_000),
      'Regards, '.repeat(22_000),
      ' \n'.repeat(100_000),
    ];
    for (const s of inputs) expect(Array.isArray(detectPii(s))).toBe(true);
    for (const s of inputs) expect(Array.isArray(detectPii(s, { types: EXTRA_PII_TYPES }))).toBe(true);
  });
});
