// Card markdown to HTML exactly as the CDS Hooks sandbox renders a card's detail
// (src/components/CardList/card-list.jsx: <ReactMarkdown remarkPlugins={[remarkGfm]} rehypePlugins={[rehypeRaw]}>).
// Reads a JSON array of markdown strings on stdin, writes a JSON array of HTML strings.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import ReactMarkdown from 'react-markdown';
import remarkGfm from 'remark-gfm';
import rehypeRaw from 'rehype-raw';

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const html = JSON.parse(input).map((markdown) => renderToStaticMarkup(
    createElement(ReactMarkdown, { remarkPlugins: [remarkGfm], rehypePlugins: [rehypeRaw] }, markdown)));
  process.stdout.write(JSON.stringify(html));
});
